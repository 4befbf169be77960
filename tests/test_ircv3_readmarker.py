"""draft/read-marker: MARKREAD, shared by an account's connections."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from chat.commands.capabilities import SUPPORTED_CAPS
from chat.readmarkers import MAX_MARKERS
from chat.storage import Account, Store
from chat.storage.sqlite import Database, SQLiteStore
from tests import services_support
from tests.accounts_support import PASSWORD, account_harness, make_account
from tests.ircv3_support import with_caps
from tests.support import FakeClient, Harness

STAMP = "timestamp=2026-01-02T03:04:05.678Z"
EARLIER = "timestamp=2025-01-02T03:04:05.678Z"


def logged_in(harness: Harness, nick: str) -> FakeClient:
    client = harness.register(nick)
    client.send(f"NS IDENTIFY alice {PASSWORD}")
    assert client.conn.account == "alice", client.lines()
    client.raw()
    return with_caps(client, "draft/read-marker")


class MarkReadTests(TestCase):
    def setUp(self) -> None:
        self.harness = account_harness()
        make_account(self.harness, "alice")

    def test_get_and_set(self) -> None:
        alice = logged_in(self.harness, "alice")
        alice.send("MARKREAD #chan")
        self.assertEqual(alice.lines(), [":irc.test MARKREAD #chan *"])
        alice.send(f"MARKREAD #chan {STAMP}")
        self.assertEqual(alice.lines(), [f":irc.test MARKREAD #chan {STAMP}"])
        alice.send("MARKREAD #CHAN")
        self.assertEqual(alice.lines(), [f":irc.test MARKREAD #CHAN {STAMP}"])
        self.assertIn("draft/read-marker", SUPPORTED_CAPS)

    def test_marker_never_moves_back(self) -> None:
        alice = logged_in(self.harness, "alice")
        alice.send(f"MARKREAD bob {STAMP}", f"MARKREAD bob {EARLIER}")
        self.assertEqual(
            alice.lines(),
            [f":irc.test MARKREAD bob {STAMP}", f":irc.test MARKREAD bob {STAMP}"],
        )

    def test_synced_to_the_accounts_other_connections(self) -> None:
        first = logged_in(self.harness, "alice")
        second = logged_in(self.harness, "alice2")
        stranger = with_caps(self.harness.register("carol"), "draft/read-marker")
        first.send(f"MARKREAD #chan {STAMP}")
        first.raw()
        self.assertEqual(second.lines(), [f":irc.test MARKREAD #chan {STAMP}"])
        self.assertEqual(stranger.lines(), [])
        first.send(f"MARKREAD #chan {EARLIER}")
        self.assertEqual(second.lines(), [])
        second.send("MARKREAD #chan")
        self.assertEqual(second.lines(), [f":irc.test MARKREAD #chan {STAMP}"])

    def test_join_tells_the_marker(self) -> None:
        alice = logged_in(self.harness, "alice")
        alice.send(f"MARKREAD #chan {STAMP}")
        alice.raw()
        alice.send("JOIN #chan")
        self.assertEqual(alice.lines()[:2][1], f":irc.test MARKREAD #chan {STAMP}")

    def test_guest_markers_are_its_own(self) -> None:
        guest = with_caps(self.harness.register("guest"), "draft/read-marker")
        other = with_caps(self.harness.register("other"), "draft/read-marker")
        guest.send(f"MARKREAD #chan {STAMP}")
        guest.raw()
        other.send("MARKREAD #chan")
        self.assertEqual(other.lines(), [":irc.test MARKREAD #chan *"])

    def test_bad_input(self) -> None:
        alice = logged_in(self.harness, "alice")
        alice.send("MARKREAD", "MARKREAD #chan 2026-01-02", "MARKREAD #c timestamp=x")
        self.assertEqual(
            [m.params[:2] for m in alice.messages()],
            [
                ("MARKREAD", "NEED_MORE_PARAMS"),
                ("MARKREAD", "INVALID_PARAMS"),
                ("MARKREAD", "INVALID_PARAMS"),
            ],
        )

    def test_oldest_marker_is_forgotten_past_the_limit(self) -> None:
        alice = logged_in(self.harness, "alice")
        for index in range(MAX_MARKERS + 1):
            alice.send(f"MARKREAD #c{index} {STAMP}")
            self.harness.clock.advance(1)  # past fakelag
        alice.raw()
        alice.send("MARKREAD #c0", "MARKREAD #c1")
        self.assertEqual(
            alice.lines(),
            [":irc.test MARKREAD #c0 *", f":irc.test MARKREAD #c1 {STAMP}"],
        )


class StoredMarkersTests(TestCase):
    def test_markers_outlive_the_connection_and_the_server(self) -> None:
        harness = account_harness()
        make_account(harness, "alice")
        store = harness.server.accounts.store
        first = logged_in(harness, "alice")
        first.send(f"MARKREAD #chan {STAMP}")
        first.send("QUIT")
        restarted = Harness()
        restarted.server.accounts = harness.server.accounts
        again = logged_in(restarted, "alice")
        again.send("MARKREAD #chan")
        self.assertEqual(again.lines(), [f":irc.test MARKREAD #chan {STAMP}"])
        found: list[dict[str, float]] = []
        store.read_markers("ALICE").addCallback(found.append)
        self.assertEqual(list(found[0]), ["#chan"])

    def test_database_keeps_the_latest_and_forgets_with_the_account(self) -> None:
        database = Database(":memory:")
        database.create_account(Account("alice", "hash"))
        database.set_read_marker("alice", "#a", 20.0)
        database.set_read_marker("alice", "#a", 10.0)
        database.set_read_marker("nobody", "#a", 10.0)
        self.assertEqual(database.read_markers("Alice"), {"#a": 20.0})
        for index in range(MAX_MARKERS + 1):
            database.set_read_marker("alice", f"#c{index}", 100.0 + index)
        markers = database.read_markers("alice")
        self.assertEqual(len(markers), MAX_MARKERS)
        self.assertNotIn("#a", markers)
        database.delete_account("alice")
        self.assertEqual(database.read_markers("alice"), {})
        self.assertEqual(database.read_markers("nobody"), {})


class ReadMarkerStoreMixin:
    """Read markers through a `Store`'s Deferreds; subclasses make it."""

    def make_store(self) -> Store:
        raise NotImplementedError

    async def test_markers_move_forward_and_go_with_the_account(self) -> None:
        t = cast(TestCase, self)
        store = self.make_store()
        await store.create_account(Account("Alice", "hash"))
        await store.set_read_marker("alice", "#a", 20.0)
        await store.set_read_marker("ALICE", "#a", 10.0)
        await store.set_read_marker("alice", "bob", 5.0)
        await store.set_read_marker("nobody", "#a", 10.0)
        t.assertEqual(await store.read_markers("Alice"), {"#a": 20.0, "bob": 5.0})
        t.assertEqual(await store.read_markers("nobody"), {})
        await store.delete_account("alice")
        t.assertEqual(await store.read_markers("alice"), {})


class SQLiteReadMarkerStoreTests(ReadMarkerStoreMixin, TestCase):
    def make_store(self) -> Store:
        store = SQLiteStore.in_directory(Path(self.mktemp()), reactor)
        self.addCleanup(store.close)
        return store


class PostgresReadMarkerStoreTests(ReadMarkerStoreMixin, TestCase):
    """On a real PostgreSQL server (tests.services_support)."""

    def make_store(self) -> Store:
        from chat.storage.postgres import PostgresStore

        store = PostgresStore(services_support.postgres_database(), reactor)
        self.addCleanup(store.close)
        return store
