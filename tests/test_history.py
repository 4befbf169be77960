"""The history stores: the same CHATHISTORY selections in memory, in SQLite
and in PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import cast

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTCP
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from chat.history import (
    MESSAGE_COMMANDS,
    HistoryConfig,
    HistoryItem,
    HistoryStore,
    Query,
    Search,
    Selector,
    conversation_key,
)
from chat.history.memory import MemoryHistory
from chat.history.rows import item_row, params_json, row_item
from chat.history.sqlite import FILENAME, MIGRATIONS, SQLiteHistory
from chat.storage import StoreUnavailableError
from tests import services_support

#: Stored times start here (2026-01-01T00:00:00Z) and grow by one second.
T0 = 1767225600.0


def item(
    n: int, target: str = "#c", command: str = "PRIVMSG", **kw: object
) -> HistoryItem:
    """The *n*-th test message: msgid ``m<n>``, time ``T0 + n``."""
    fields: dict[str, object] = {
        "target": target,
        "msgid": f"m{n}",
        "time": T0 + n,
        "command": command,
        "source": "alice!~alice@host",
        "params": (target, f"text {n}"),
        "account": "alice",
        "tags": {"+x": str(n)},
    }
    fields.update(kw)
    return HistoryItem(**fields)  # type: ignore[arg-type]


def ids(items: list[HistoryItem]) -> list[str]:
    return [i.msgid for i in items]


class StoreTestsMixin:
    """Tests every `HistoryStore` passes; subclasses make the store."""

    config = HistoryConfig(max_age=0, max_per_target=1000)

    def make_store(self, config: HistoryConfig) -> HistoryStore:
        raise NotImplementedError

    def setUp(self) -> None:
        self.store = self.make_store(self.config)
        for n in range(1, 11):
            self.store.add(item(n))
        self.store.add(item(11, target="#other"))
        self.store.add(item(12, command="TAGMSG"))

    async def query(
        self,
        subcommand: str,
        start: Selector | None,
        limit: int = 100,
        end: Selector | None = None,
        commands: frozenset[str] = MESSAGE_COMMANDS,
        keys: tuple[str, ...] = ("#c",),
    ) -> list[str]:
        found = await self.store.query(
            Query(keys, subcommand, start, limit, end, commands)
        )
        return ids(found)

    async def test_latest(self) -> None:
        t = self.assertEqual  # type: ignore[attr-defined]
        t(await self.query("LATEST", None, 3), ["m8", "m9", "m10"])
        t(await self.query("LATEST", Selector(msgid="m8")), ["m9", "m10"])
        t(await self.query("LATEST", Selector(time=T0 + 9)), ["m10"])

    async def test_before_and_after(self) -> None:
        t = self.assertEqual  # type: ignore[attr-defined]
        t(await self.query("BEFORE", Selector(msgid="m5"), 2), ["m3", "m4"])
        t(await self.query("BEFORE", Selector(time=T0 + 3)), ["m1", "m2"])
        t(await self.query("AFTER", Selector(msgid="m5"), 2), ["m6", "m7"])
        t(await self.query("AFTER", Selector(time=T0 + 8.5)), ["m9", "m10"])

    async def test_around(self) -> None:
        t = self.assertEqual  # type: ignore[attr-defined]
        t(await self.query("AROUND", Selector(msgid="m5"), 4), ["m3", "m4", "m5", "m6"])
        t(await self.query("AROUND", Selector(time=T0 + 1), 3), ["m1", "m2"])

    async def test_between_both_ways(self) -> None:
        t = self.assertEqual  # type: ignore[attr-defined]
        forward = await self.query(
            "BETWEEN", Selector(msgid="m2"), 3, Selector(msgid="m9")
        )
        t(forward, ["m3", "m4", "m5"])
        backward = await self.query(
            "BETWEEN", Selector(time=T0 + 9), 3, Selector(time=T0 + 2)
        )
        t(backward, ["m6", "m7", "m8"])

    async def test_unknown_msgid_selects_nothing(self) -> None:
        t = self.assertEqual  # type: ignore[attr-defined]
        t(await self.query("BEFORE", Selector(msgid="nope")), [])
        t(await self.query("BEFORE", Selector(msgid="m11")), [], "m11 is elsewhere")

    async def test_event_playback_commands(self) -> None:
        t = self.assertEqual  # type: ignore[attr-defined]
        t((await self.query("LATEST", None, 1)), ["m10"])
        events = MESSAGE_COMMANDS | {"TAGMSG"}
        t((await self.query("LATEST", None, 1, commands=events)), ["m12"])

    async def test_items_come_back_whole(self) -> None:
        found = await self.store.query(Query(("#c",), "LATEST", None, 1))
        self.assertEqual(  # type: ignore[attr-defined]
            found[0].params, ("#c", "text 10")
        )
        self.assertEqual(found[0].tags, {"+x": "10"})  # type: ignore[attr-defined]
        self.assertEqual(found[0].account, "alice")  # type: ignore[attr-defined]
        self.assertEqual(found[0].time, T0 + 10)  # type: ignore[attr-defined]

    async def test_several_keys(self) -> None:
        found = await self.query("LATEST", None, 2, keys=("#c", "#other"))
        self.assertEqual(found, ["m10", "m11"])  # type: ignore[attr-defined]

    async def test_every_conversation_of_a_party(self) -> None:
        me = "n:alice"
        self.store.add(item(13, target=conversation_key(me, "a:bob"), sender=me))
        self.store.add(item(14, target=conversation_key("n:x", "n:y"), sender="n:x"))
        self.store.add(item(15, target=conversation_key("n:carol", me), recipient=me))
        found = await self.store.query(Query((), "LATEST", None, 10, party=me))
        self.assertEqual(ids(found), ["m13", "m15"])  # type: ignore[attr-defined]
        found = await self.store.query(
            Query((), "BEFORE", Selector(msgid="m15"), 10, party=me)
        )
        self.assertEqual(ids(found), ["m13"])  # type: ignore[attr-defined]

    async def test_targets(self) -> None:
        me, bob = "n:alice", "a:bob"
        key = conversation_key(me, bob)
        self.store.add(
            item(13, target=key, sender=me, recipient=bob, params=("bob", "hi"))
        )
        self.store.add(item(14, target=conversation_key("n:x", "n:y"), sender="n:x"))
        found = await self.store.targets(["#c"], me, T0, T0 + 100, 10)
        self.assertEqual(  # type: ignore[attr-defined]
            [(t.key, t.time, t.peer) for t in found],
            [("#c", T0 + 12, ""), (key, T0 + 13, "bob")],
        )
        found = await self.store.targets([], bob, T0 + 100, T0, 10)
        self.assertEqual(  # type: ignore[attr-defined]
            [(t.key, t.peer) for t in found], [(key, "alice")]
        )
        self.assertEqual(  # type: ignore[attr-defined]
            await self.store.targets(["#c"], me, T0 + 11, T0 + 12, 10), []
        )
        # Earlier messages in the window, the latest after it: not listed.
        found = await self.store.targets(["#c"], me, T0, T0 + 12.5, 10)
        self.assertEqual([t.key for t in found], ["#c"])  # type: ignore[attr-defined]
        found = await self.store.targets(["#c"], me, T0, T0 + 11.5, 10)
        self.assertEqual(found, [])  # type: ignore[attr-defined]


class RetentionMixin:
    def make_store(self, config: HistoryConfig) -> HistoryStore:
        raise NotImplementedError

    async def test_retention_by_count(self) -> None:
        store = self.make_store(HistoryConfig(max_age=0, max_per_target=3))
        for n in range(1, 8):
            store.add(item(n))
        found = await store.query(Query(("#c",), "LATEST", None, 100))
        self.assertEqual(ids(found), ["m5", "m6", "m7"])  # type: ignore[attr-defined]


class MemoryHistoryTests(StoreTestsMixin, RetentionMixin, TestCase):
    def make_store(self, config: HistoryConfig) -> HistoryStore:
        self.clock = Clock()
        self.clock.advance(T0 + 100)
        return MemoryHistory(self.clock, config)

    async def test_retention_by_age(self) -> None:
        store = self.make_store(HistoryConfig(max_age=95))
        for n in range(1, 11):
            store.add(item(n))
        found = await store.query(Query(("#c",), "LATEST", None, 100))
        self.assertEqual(ids(found), ["m5", "m6", "m7", "m8", "m9", "m10"])


class SQLiteHistoryTests(StoreTestsMixin, RetentionMixin, TestCase):
    def make_store(self, config: HistoryConfig) -> HistoryStore:
        path = Path(self.mktemp()) / FILENAME
        store = SQLiteHistory(path, reactor, config)
        self.addCleanup(store.close)
        self.path = path
        return store

    async def test_retention_waits_for_the_trim_interval(self) -> None:
        store = self.make_store(
            HistoryConfig(max_age=0, max_per_target=3, trim_interval=3600)
        )
        for n in range(1, 5):
            store.add(item(n))
        found = await store.query(Query(("#c",), "LATEST", None, 100))
        self.assertEqual(ids(found), ["m2", "m3", "m4"])
        for n in range(5, 8):
            store.add(item(n))
        found = await store.query(Query(("#c",), "LATEST", None, 100))
        self.assertEqual(ids(found), ["m2", "m3", "m4", "m5", "m6", "m7"])

    async def test_survives_a_restart(self) -> None:
        await self.store.close()
        again = SQLiteHistory(self.path, reactor, self.config)
        self.addCleanup(again.close)
        found = await again.query(Query(("#c",), "LATEST", None, 2))
        self.assertEqual(ids(found), ["m9", "m10"])
        self.assertEqual(found[1].tags, {"+x": "10"})
        again.add(item(20))
        found = await again.query(Query(("#c",), "LATEST", None, 1))
        self.assertEqual(ids(found), ["m20"])

    async def test_nothing_is_queued_after_close(self) -> None:
        await self.store.close()
        self.store.add(item(30))
        self.assertEqual(self.store._pending, [])  # type: ignore[attr-defined]
        self.assertIsNone(self.store._flush_call)  # type: ignore[attr-defined]

    async def test_writes_wait_for_a_batch_off_the_reactor(self) -> None:
        path = Path(self.mktemp()) / FILENAME
        config = HistoryConfig(max_age=0, flush_interval=60)
        store = SQLiteHistory(path, reactor, config)
        self.addCleanup(store.close)
        store.add(item(1))
        store.add(item(2))
        self.assertFalse(path.exists(), "nothing is written on the reactor thread")
        found = await store.query(Query(("#c",), "LATEST", None, 10))
        self.assertEqual(ids(found), ["m1", "m2"], "reads see pending writes")

    async def test_no_timer_while_a_write_runs(self) -> None:
        """Items added during a write wait for its end, which writes them
        (group commit): no flush timer is started and cancelled per item."""
        path = Path(self.mktemp()) / FILENAME
        store = SQLiteHistory(path, reactor, HistoryConfig(max_age=0))
        self.addCleanup(store.close)
        store.add(item(1))
        first = store.stored()
        store.add(item(2))
        second = store.stored()
        store.add(item(3))
        self.assertIsNone(store._flush_call)
        await first
        await second
        found = await store.query(Query(("#c",), "LATEST", None, 10))
        self.assertEqual(ids(found), ["m1", "m2", "m3"])

    async def test_batch_size_flushes_at_once(self) -> None:
        path = Path(self.mktemp()) / FILENAME
        store = SQLiteHistory(
            path, reactor, HistoryConfig(max_age=0, flush_interval=60, batch_size=2)
        )
        self.addCleanup(store.close)
        store.add(item(1))
        store.add(item(2))
        await store.close()
        db = sqlite3.connect(path)
        self.addCleanup(db.close)
        self.assertEqual(db.execute("SELECT count(*) FROM history").fetchone(), (2,))
        self.assertEqual(db.execute("PRAGMA journal_mode").fetchone(), ("wal",))
        version = db.execute("PRAGMA user_version").fetchone()
        self.assertEqual(version, (len(MIGRATIONS),))

    async def test_retention_by_age(self) -> None:
        path = Path(self.mktemp()) / FILENAME
        store = SQLiteHistory(path, reactor, HistoryConfig(max_age=60))
        self.addCleanup(store.close)
        now = reactor.seconds()
        store.add(item(1, time=now - 120))
        store.add(item(2, time=now - 1))
        await store.close()
        db = sqlite3.connect(path)
        self.addCleanup(db.close)
        rows = db.execute("SELECT msgid FROM history").fetchall()
        self.assertEqual(rows, [("m2",)])

    async def test_text_is_indexed_with_each_batch(self) -> None:
        """Each PRIVMSG and NOTICE is searchable once written, each once."""
        path = Path(self.mktemp()) / FILENAME
        store = SQLiteHistory(path, reactor, HistoryConfig(max_age=0, batch_size=2))
        self.addCleanup(store.close)
        store.add(item(1))
        store.add(item(2, command="TAGMSG"))
        store.add(item(3, command="NOTICE"))
        await store.stored()
        store.add(item(4))
        found = await store.search(Search(("#c",), 10, text="text"))
        self.assertEqual(ids(found), ["m1", "m3", "m4"])
        await store.close()
        db = sqlite3.connect(path)
        self.addCleanup(db.close)
        rows = db.execute(
            "SELECT text FROM history_text JOIN history ON history_text.rowid = seq"
        ).fetchall()
        self.assertEqual(rows, [("text 1",), ("text 3",), ("text 4",)])

    async def test_forgotten_conversations_forget_their_parties(self) -> None:
        """Who talked to whom goes with the last message of a conversation,
        by age or by redaction."""
        path = Path(self.mktemp()) / FILENAME
        store = SQLiteHistory(path, reactor, HistoryConfig(max_age=60))
        self.addCleanup(store.close)
        now = reactor.seconds()
        old = conversation_key("n:alice", "n:bob")
        new = conversation_key("n:alice", "n:carol")
        gone = conversation_key("n:dave", "n:erin")
        store.add(
            item(1, target=old, sender="n:alice", recipient="n:bob", time=now - 120)
        )
        store.add(item(2, target=new, sender="n:alice", recipient="n:carol", time=now))
        store.add(item(3, target=gone, sender="n:dave", recipient="n:erin", time=now))
        self.assertTrue(await store.redact([gone], "m3"))
        await store.close()
        db = sqlite3.connect(path)
        self.addCleanup(db.close)
        rows = db.execute("SELECT party, target FROM parties ORDER BY party").fetchall()
        self.assertEqual(rows, [("n:alice", new), ("n:carol", new)])

    async def test_upgrade_from_version_2(self) -> None:
        """A database made with the text trigger and the sender/recipient
        indexes: its rows stay searchable (new ones indexed once) and its
        private messages are still found by party."""
        path = Path(self.mktemp()) / FILENAME
        path.parent.mkdir()
        old = sqlite3.connect(path)
        for number, script in enumerate(MIGRATIONS[:2], 1):
            old.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")
        bob = conversation_key("n:alice", "n:bob")
        with old:
            old.execute(
                "INSERT INTO history (target, msgid, time, command, source, params,"
                " account, tags, sender, recipient) VALUES"
                " (?, 'm1', 1.0, 'PRIVMSG', 'alice!b@c', '[\"bob\", \"old words\"]',"
                " NULL, '{}', 'n:alice', 'n:bob')",
                (bob,),
            )
        old.close()
        store = SQLiteHistory(path, reactor, HistoryConfig(max_age=0))
        self.addCleanup(store.close)
        store.add(item(2, params=("#c", "new words")))
        carol = conversation_key("n:carol", "n:bob")
        store.add(item(3, target=carol, sender="n:carol", recipient="n:bob"))
        found = await store.search(Search(("#c",), 10, party="n:alice", text="words"))
        self.assertEqual(ids(found), ["m1", "m2"])
        found = await store.query(Query((), "LATEST", None, 10, party="n:bob"))
        self.assertEqual(ids(found), ["m1", "m3"])
        found = await store.query(Query((), "LATEST", None, 10, party="n:carol"))
        self.assertEqual(ids(found), ["m3"])
        await store.close()
        db = sqlite3.connect(path)
        self.addCleanup(db.close)
        count = db.execute("SELECT count(*) FROM history_text").fetchone()
        self.assertEqual(count, (3,))


class PostgresHistoryTests(StoreTestsMixin, RetentionMixin, TestCase):
    """The same tests on a real PostgreSQL server (tests.services_support)."""

    def make_store(self, config: HistoryConfig) -> HistoryStore:
        from chat.history.postgres import PostgresHistory

        self.dsn = services_support.postgres_database()
        store = PostgresHistory(self.dsn, reactor, config)
        self.addCleanup(store.close)
        return store

    async def test_survives_a_restart(self) -> None:
        from chat.history.postgres import PostgresHistory

        await self.store.close()
        again = PostgresHistory(self.dsn, reactor, self.config)
        self.addCleanup(again.close)
        found = await again.query(Query(("#c",), "LATEST", None, 2))
        self.assertEqual(ids(found), ["m9", "m10"])
        self.assertEqual(found[1].tags, {"+x": "10"})

    async def test_retention_by_age(self) -> None:
        store = self.make_store(HistoryConfig(max_age=60))
        now = reactor.seconds()
        store.add(item(1, time=now - 120))
        store.add(item(2, time=now - 1))
        found = await store.query(Query(("#c",), "LATEST", None, 100))
        self.assertEqual(ids(found), ["m2"])

    async def test_writes_wait_while_the_server_is_away(self) -> None:
        """Stopped PostgreSQL: reads fail, writes wait in the bounded buffer
        (drops counted) and are written in order when it is back."""
        from chat.history.postgres import PostgresHistory

        store = cast(PostgresHistory, self.store)
        await store.query(Query(("#c",), "LATEST", None, 1))
        server = services_support.postgres()
        server.stop()
        self.addCleanup(server.start)
        store.buffer.limit = 3
        for n in range(20, 25):
            store.add(item(n))
        with self.assertRaises(StoreUnavailableError):
            await store.query(Query(("#c",), "LATEST", None, 1))
        self.assertEqual(len(store.buffer), 3)
        self.assertEqual(store.buffer.dropped, 2, "m20 and m21 made room")
        server.start()
        found = await store.query(Query(("#c",), "LATEST", None, 4))
        self.assertEqual(ids(found), ["m10", "m22", "m23", "m24"])
        self.assertEqual(len(store.buffer), 0)

    async def test_a_message_written_twice_is_kept_once(self) -> None:
        """A write sent again (its commit lost with the connection), or the
        same message stored by two nodes, is one row."""
        from chat.history.postgres import PostgresHistory

        other = PostgresHistory(self.dsn, reactor, self.config)
        self.addCleanup(other.close)
        await self.store.stored()
        for store in (self.store, other):
            store.add(item(13))
            store.add(item(13, target="#other"))
            await store.stored()
        self.assertEqual(self.committed(), 14)
        found = await other.query(Query(("#c",), "LATEST", None, 2))
        self.assertEqual(ids(found), ["m10", "m13"])

    def committed(self) -> int:
        import psycopg

        with psycopg.connect(self.dsn) as conn:
            row = conn.execute("SELECT count(*) FROM history").fetchone()
            return int(row[0]) if row else 0

    async def test_stored_fires_after_the_commit(self) -> None:
        await self.store.stored()
        self.assertEqual(self.committed(), 12)
        self.store.add(item(13))
        waiting = self.store.stored()
        self.assertFalse(waiting.called, "nothing is committed yet")
        self.store.add(item(14))
        after = self.store.stored()
        await waiting
        await after
        self.assertEqual(self.committed(), 14)
        self.assertTrue(self.store.stored().called, "nothing pending")

    async def test_stored_fires_at_once_while_the_server_is_away(self) -> None:
        await self.store.stored()
        server = services_support.postgres()
        server.stop()
        self.addCleanup(server.start)
        self.store.add(item(13))
        await self.store.stored()  # the write fails: the item waits
        self.store.add(item(14))
        self.assertTrue(self.store.stored().called, "no wait for a lost server")
        server.start()
        found = await self.store.query(Query(("#c",), "LATEST", None, 2))
        self.assertEqual(ids(found), ["m13", "m14"])


class RowTests(TestCase):
    """How an item is a row of the SQL stores."""

    @given(st.lists(st.text()).map(tuple))
    def test_params_json_is_json_dumps(self, params: tuple[str, ...]) -> None:
        self.assertEqual(params_json(params), json.dumps(params))

    def test_an_item_comes_back_from_its_row(self) -> None:
        for tags in ({}, {"+x": "1", "bot": ""}):
            stored = item(1, params=("bob", 'say "hi" \u00e9\n'), tags=tags)
            row = item_row(stored)
            self.assertEqual(row_item((7, *row)), replace(stored, seq=7))


class WriteBufferTests(TestCase):
    def test_bounded_oldest_dropped_and_counted(self) -> None:
        from chat.history.buffer import WriteBuffer

        buffer = WriteBuffer(limit=3)
        for n in range(1, 6):
            buffer.add(item(n))
        self.assertEqual((len(buffer), buffer.dropped), (3, 2))
        self.assertEqual([i.msgid for _, i in buffer.take()], ["m3", "m4", "m5"])
        self.assertEqual(len(buffer), 0)

    def test_a_failed_batch_goes_back_in_its_place(self) -> None:
        from chat.history.buffer import WriteBuffer

        buffer = WriteBuffer(limit=4)
        buffer.add(item(1))
        buffer.add(item(2))
        batch = buffer.take()
        buffer.add(item(3))
        buffer.add(item(4))
        buffer.add(item(5))
        buffer.put_back(batch)
        self.assertEqual(buffer.dropped, 1, "the oldest, m1, made room")
        self.assertEqual([i.msgid for _, i in buffer.take()], ["m2", "m3", "m4", "m5"])


class Silent(Protocol):
    """Accepts, reads and never answers."""

    def __init__(self, accepted: list[Silent]) -> None:
        accepted.append(self)
        self.lost: Deferred[None] = Deferred()

    def connectionLost(self, reason: object = None) -> None:
        self.lost.callback(None)


class SilentDatabaseTests(TestCase):
    """A database server that accepts connections and never answers (a
    network that drops everything): deliveries do not wait for it."""

    def setUp(self) -> None:
        self.accepted: list[Silent] = []
        factory = ServerFactory.forProtocol(lambda: Silent(self.accepted))
        self.listening = cast(IReactorTCP, reactor).listenTCP(
            0, factory, interface="127.0.0.1"
        )
        self.addCleanup(self.close_all)

    async def close_all(self) -> None:
        await self.listening.stopListening()
        for protocol in self.accepted:
            if protocol.transport is not None:
                protocol.transport.abortConnection()
            await protocol.lost

    async def test_stored_stops_waiting_after_max_stored_wait(self) -> None:
        from chat.history.postgres import PostgresHistory

        port = self.listening.getHost().port
        dsn = f"postgresql://chat@127.0.0.1:{port}/chat?connect_timeout=2"
        clock = Clock()
        config = HistoryConfig(max_age=0, max_stored_wait=2.0)
        store = PostgresHistory(dsn, reactor, config, clock=clock)
        store.add(item(1))
        waiting = store.stored()
        clock.advance(1.9)
        self.assertFalse(waiting.called, "the write is still running")
        clock.advance(0.1)
        self.assertTrue(waiting.called, "no longer held for the database")
        store.add(item(2))
        self.assertTrue(store.stored().called, "nor is the next message")
        await store.close()
        self.assertEqual(len(store.buffer), 2, "both still wait to be written")
