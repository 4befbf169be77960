"""What the history stores do besides CHATHISTORY: redact (and search)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from chat.history import (
    HistoryConfig,
    HistoryStore,
    Query,
    Search,
    continuation_prefix,
    conversation_key,
)
from chat.history.memory import MemoryHistory
from chat.history.sqlite import FILENAME, MIGRATIONS, SQLiteHistory
from tests import services_support
from tests.test_history import T0, ids, item


class ExtensionsMixin:
    """Tests every `HistoryStore` passes; subclasses make the store."""

    config = HistoryConfig(max_age=0, max_per_target=1000)
    #: Whether a search ignores accents (PostgreSQL's does not).
    folds_accents = True

    def make_store(self, config: HistoryConfig) -> HistoryStore:
        raise NotImplementedError

    def setUp(self) -> None:
        self.store = self.make_store(self.config)

    async def latest(self, key: str = "#c") -> list[str]:
        return ids(await self.store.query(Query((key,), "LATEST", None, 100)))

    def fill(self) -> None:
        """Messages to search: two channels and two conversations."""
        texts = [
            ("#c", "alice", "The quick brown fox"),
            ("#c", "bob", "a QUICK reply, café au lait"),
            ("#c", "Bob[1]", "brown bread"),
            ("#other", "alice", "quick elsewhere"),
        ]
        for n, (target, nick, text) in enumerate(texts, 1):
            self.store.add(
                item(n, target=target, source=f"{nick}!u@h", params=(target, text))
            )
        ab = conversation_key("a:alice", "a:bob")
        self.store.add(
            item(
                5,
                target=ab,
                sender="a:alice",
                recipient="a:bob",
                params=("bob", "quick private"),
            )
        )
        cd = conversation_key("a:carol", "a:dave")
        self.store.add(
            item(
                6,
                target=cd,
                sender="a:carol",
                recipient="a:dave",
                params=("dave", "quick secret"),
            )
        )
        self.store.add(item(7, command="JOIN", params=("#c",)))

    async def search(self, **kw: object) -> list[str]:
        fields: dict[str, object] = {"keys": ("#c",), "limit": 100}
        fields.update(kw)
        return ids(await self.store.search(Search(**fields)))  # type: ignore[arg-type]

    async def test_search_text_words_any_case_and_accents(self) -> None:
        t = self.assertEqual  # type: ignore[attr-defined]
        self.fill()
        t(await self.search(text="quick"), ["m1", "m2"])
        t(await self.search(text="QUICK fox"), ["m1"])
        t(await self.search(text="café"), ["m2"])
        t(await self.search(text="cafe"), ["m2"] if self.folds_accents else [])
        t(await self.search(text="fox reply"), [])
        t(await self.search(text='"unbalanced * OR ('), [])
        t(await self.search(), ["m1", "m2", "m3"], "no text: every message")

    async def test_search_sender_time_and_limit(self) -> None:
        t = self.assertEqual  # type: ignore[attr-defined]
        self.fill()
        t(await self.search(nick="bob"), ["m2"])
        t(await self.search(nick="bob{1}"), ["m3"], "rfc1459 folding")
        t(await self.search(after=T0 + 2), ["m2", "m3"])
        t(await self.search(before=T0 + 2), ["m1", "m2"])
        t(await self.search(limit=2), ["m2", "m3"], "newest without after")
        t(await self.search(limit=2, after=T0), ["m1", "m2"], "oldest with after")

    async def test_search_visibility(self) -> None:
        t = self.assertEqual  # type: ignore[attr-defined]
        self.fill()
        t(await self.search(text="quick", party="a:alice"), ["m1", "m2", "m5"])
        t(await self.search(keys=(), text="quick", party="a:dave"), ["m6"])
        t(await self.search(keys=(), text="quick"), [])

    async def test_search_forgets_redacted_messages(self) -> None:
        t = self.assertEqual  # type: ignore[attr-defined]
        self.fill()
        await self.store.redact(["#c"], "m1")
        t(await self.search(text="quick"), ["m2"])

    async def test_redact_removes_one_message(self) -> None:
        t = self.assertEqual  # type: ignore[attr-defined]
        for n in range(1, 4):
            self.store.add(item(n))
        self.store.add(item(4, target="#other"))
        t(await self.store.redact(["#c"], "m2"), True)
        t(await self.latest(), ["m1", "m3"])
        t(await self.store.redact(["#c"], "m2"), False)
        t(await self.store.redact(["#c"], "m4"), False, "another target's")
        t(await self.latest("#other"), ["m4"])

    async def test_redact_removes_continuation_lines(self) -> None:
        t = self.assertEqual  # type: ignore[attr-defined]
        self.store.add(item(1))
        for index in (1, 2):
            self.store.add(
                item(2, msgid=continuation_prefix("m1") + str(index), time=T0 + 1)
            )
        self.store.add(item(10))
        t(await self.store.redact(["#c"], "m1"), True)
        t(await self.latest(), ["m10"])


class MemoryExtensionsTests(ExtensionsMixin, TestCase):
    def make_store(self, config: HistoryConfig) -> HistoryStore:
        clock = Clock()
        clock.advance(T0 + 100)
        return MemoryHistory(clock, config)


class PostgresExtensionsTests(ExtensionsMixin, TestCase):
    """The same on a real PostgreSQL server (tests.services_support)."""

    folds_accents = False

    def make_store(self, config: HistoryConfig) -> HistoryStore:
        from chat.history.postgres import PostgresHistory

        store = PostgresHistory(services_support.postgres_database(), reactor, config)
        self.addCleanup(store.close)
        return store


class SQLiteExtensionsTests(ExtensionsMixin, TestCase):
    def make_store(self, config: HistoryConfig) -> HistoryStore:
        path = Path(self.mktemp()) / FILENAME
        store = SQLiteHistory(path, reactor, config)
        self.addCleanup(store.close)
        return store


class SQLiteSearchMigrationTests(TestCase):
    async def test_history_from_before_search_is_indexed(self) -> None:
        path = Path(self.mktemp()) / FILENAME
        path.parent.mkdir()
        db = sqlite3.connect(path)
        db.executescript(f"BEGIN; {MIGRATIONS[0]}; PRAGMA user_version=1; COMMIT;")
        db.execute(
            "INSERT INTO history (target, msgid, time, command, source, params,"
            " account, tags, sender, recipient)"
            " VALUES ('#c', 'old', ?, 'PRIVMSG', 'a!u@h', ?, NULL, '{}', '', '')",
            (T0, json.dumps(["#c", "kept from before"])),
        )
        db.commit()
        db.close()
        store = SQLiteHistory(path, reactor, HistoryConfig(max_age=0))
        self.addCleanup(store.close)
        found = await store.search(Search(("#c",), 10, text="before"))
        self.assertEqual(ids(found), ["old"])
