"""Tests for the stores of accounts and channels: the same tests on SQLite
and on PostgreSQL, then migrations and durability."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import cast

from twisted.internet import reactor
from twisted.internet.defer import gatherResults
from twisted.logger import Logger, LogLevel, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from chat.storage import (
    Account,
    AccountExistsError,
    ChannelExistsError,
    RegisteredChannel,
    ScramCredentials,
    Store,
    StoreUnavailableError,
    log_store_failure,
)
from chat.storage.sqlite import FILENAME, MIGRATIONS, Database, SQLiteStore
from tests import services_support

SCRAM = ScramCredentials(b"salt", 4096, b"s" * 32, b"k" * 32)


def account(name: str, **fields: object) -> Account:
    return Account(name=name, password_hash="scrypt$x", created=1.0, **fields)  # type: ignore[arg-type]


class StoreTestsMixin:
    """Tests every `Store` passes, through its Deferreds; subclasses make it."""

    def make_store(self) -> Store:
        raise NotImplementedError

    def setUp(self) -> None:
        self.store = self.make_store()

    async def test_account_round_trip(self) -> None:
        t = cast(TestCase, self)
        await self.store.create_account(
            account("Alice", scram=SCRAM, email="a@example.org", certfps=("ab" * 32,))
        )
        found = await self.store.get_account("ALICE")
        assert found is not None
        t.assertEqual(found.name, "Alice")
        t.assertEqual(found.scram, SCRAM)
        t.assertEqual(found.email, "a@example.org")
        t.assertEqual(found.certfps, ("ab" * 32,))
        t.assertEqual(found.created, 1.0)
        t.assertFalse(found.operator)
        t.assertIsNone(await self.store.get_account("bob"))

    async def test_names_fold_with_the_irc_casemapping(self) -> None:
        t = cast(TestCase, self)
        await self.store.create_account(account("a[b]"))
        t.assertIsNotNone(await self.store.get_account("A{B}"))
        with t.assertRaises(AccountExistsError):
            await self.store.create_account(account("A{b}"))
        with t.assertRaises(AccountExistsError, msg="a certfp is taken"):
            await self.store.create_account(account("c", certfps=("ff",)))
            await self.store.create_account(account("d", certfps=("ff",)))
        t.assertIsNone(await self.store.get_account("d"), "nothing half-stored")

    async def test_updates(self) -> None:
        t = cast(TestCase, self)
        await self.store.create_account(account("alice"))
        t.assertTrue(await self.store.set_password("alice", "scrypt$new", SCRAM))
        t.assertTrue(await self.store.set_operator("alice", True))
        found = await self.store.get_account("alice")
        assert found is not None
        t.assertEqual((found.password_hash, found.scram), ("scrypt$new", SCRAM))
        t.assertTrue(found.operator)
        t.assertTrue(await self.store.set_password("alice", "scrypt$x", None))
        found = await self.store.get_account("alice")
        t.assertIsNone(found.scram if found else SCRAM)
        t.assertFalse(await self.store.set_password("nobody", "x", None))
        t.assertFalse(await self.store.set_operator("nobody", True))

    async def test_certfps(self) -> None:
        t = cast(TestCase, self)
        await self.store.create_account(account("alice"))
        await self.store.create_account(account("bob"))
        t.assertTrue(await self.store.add_certfp("alice", "AA11"))
        t.assertFalse(await self.store.add_certfp("bob", "aa11"), "taken by alice")
        t.assertFalse(await self.store.add_certfp("nobody", "bb22"))
        found = await self.store.account_for_certfp("aa11")
        t.assertEqual(found.name if found else None, "alice")
        t.assertFalse(await self.store.remove_certfp("bob", "aa11"))
        t.assertTrue(await self.store.remove_certfp("alice", "aa11"))
        t.assertIsNone(await self.store.account_for_certfp("aa11"))

    async def test_delete_account_drops_its_channels_and_certfps(self) -> None:
        t = cast(TestCase, self)
        await self.store.create_account(account("alice", certfps=("ff",)))
        await self.store.create_account(account("bob"))
        await self.store.register_channel(RegisteredChannel("#a", "alice", 1.0))
        await self.store.register_channel(
            RegisteredChannel("#b", "bob", 1.0, operators=("alice",))
        )
        t.assertTrue(await self.store.delete_account("ALICE"))
        t.assertFalse(await self.store.delete_account("alice"))
        t.assertIsNone(await self.store.account_for_certfp("ff"))
        channels = await self.store.list_channels()
        t.assertEqual([(c.name, c.operators) for c in channels], [("#b", ())])
        t.assertEqual([a.name for a in await self.store.list_accounts()], ["bob"])

    async def test_channels(self) -> None:
        t = cast(TestCase, self)
        await self.store.create_account(account("Alice"))
        await self.store.create_account(account("bob"))
        channel = RegisteredChannel(
            "#Chat",
            "alice",
            5.0,
            topic="hello",
            topic_set_by="alice",
            topic_set_at=7,
            modes="mnt",
            key="sesame",
            limit=10,
            operators=("bob", "nobody"),
        )
        await self.store.register_channel(channel)
        with t.assertRaises(ChannelExistsError):
            await self.store.register_channel(RegisteredChannel("#chat", "bob", 1.0))
        [stored] = await self.store.list_channels()
        t.assertEqual(stored.founder, "Alice")
        t.assertEqual(stored.operators, ("bob",), "unknown accounts are skipped")
        t.assertEqual(
            (stored.topic, stored.topic_set_at, stored.modes, stored.key, stored.limit),
            ("hello", 7, "mnt", "sesame", 10),
        )
        t.assertTrue(
            await self.store.update_channel(
                RegisteredChannel("#chat", "bob", 5.0, topic="new", operators=())
            )
        )
        [stored] = await self.store.list_channels()
        t.assertEqual(
            (stored.founder, stored.topic, stored.operators), ("bob", "new", ())
        )
        t.assertEqual(stored.registered, 5.0, "the registration time stays")
        t.assertFalse(
            await self.store.update_channel(RegisteredChannel("#none", "bob", 1.0))
        )
        t.assertTrue(await self.store.drop_channel("#CHAT"))
        t.assertFalse(await self.store.drop_channel("#chat"))
        t.assertEqual(await self.store.list_channels(), [])


class SQLiteStoreTests(StoreTestsMixin, TestCase):
    """The `Store` tests on SQLite, on its worker thread."""

    def make_store(self) -> Store:
        store = SQLiteStore.in_directory(Path(self.mktemp()), reactor)
        self.addCleanup(store.close)
        return store


class PostgresStoreTests(StoreTestsMixin, TestCase):
    """The `Store` tests on a real PostgreSQL server (tests.services_support)."""

    def make_store(self) -> Store:
        from chat.storage.postgres import PostgresStore

        self.dsn = services_support.postgres_database()
        store = PostgresStore(self.dsn, reactor)
        self.addCleanup(store.close)
        return store

    async def test_schema_is_migrated_once_by_concurrent_stores(self) -> None:
        import psycopg

        from chat.storage.postgres import MIGRATIONS as PG_MIGRATIONS
        from chat.storage.postgres import PostgresStore

        other = PostgresStore(self.dsn, reactor)
        self.addCleanup(other.close)
        await gatherResults(
            [self.store.list_accounts(), other.list_accounts()], consumeErrors=True
        )
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute("SELECT component, version FROM schema_versions")
            self.assertEqual(rows.fetchall(), [("accounts", len(PG_MIGRATIONS))])

    async def test_unreachable_server_fails_then_recovers(self) -> None:
        server = services_support.postgres()
        await self.store.create_account(account("alice"))
        server.stop()
        self.addCleanup(server.start)
        with self.assertRaises(StoreUnavailableError):
            await self.store.get_account("alice")
        with self.assertRaises(StoreUnavailableError, msg="not connected yet"):
            await self.store.create_account(account("bob"))
        server.start()
        found = await self.store.get_account("alice")
        self.assertEqual(found.name if found else None, "alice")
        await self.store.create_account(account("bob"))


class PostgresRestartTests(TestCase):
    async def test_a_connection_left_from_before_a_restart_is_replaced(self) -> None:
        """The first call after a restart works: the idle check finds the
        stale connection and opens a new one."""
        from chat.storage import postgres
        from chat.storage.postgres import PostgresStore

        store = PostgresStore(services_support.postgres_database(), reactor)
        self.addCleanup(store.close)
        await store.create_account(account("alice"))
        server = services_support.postgres()
        server.stop()
        server.start()
        self.patch(postgres, "IDLE_CHECK", 0.0)
        found = await store.get_account("alice")
        self.assertEqual(found.name if found else None, "alice")


class StoreFailureLogTests(TestCase):
    def test_an_outage_is_one_line_anything_else_a_traceback(self) -> None:
        events: list[dict[str, object]] = []
        log = Logger(observer=events.append)
        log_store_failure(
            log,
            "Lookup of {name} failed",
            Failure(StoreUnavailableError("gone")),
            name="a",
        )
        log_store_failure(log, "Lookup failed", Failure(ValueError("bug")))
        outage, bug = events
        self.assertEqual(outage["log_level"], LogLevel.warn)
        self.assertNotIn("log_failure", outage)
        self.assertEqual(formatEvent(outage), "Lookup of a failed: gone")
        self.assertEqual(bug["log_level"], LogLevel.critical)
        self.assertIsInstance(bug["log_failure"], Failure)


class SQLiteDatabaseTests(TestCase):
    """What only SQLite has: its schema version and file settings."""

    def test_schema_version(self) -> None:
        db = Database(":memory:")
        self.addCleanup(db.close)
        version = db.db.execute("PRAGMA user_version").fetchone()[0]
        self.assertEqual(version, len(MIGRATIONS))
        self.assertEqual(db.migrate(), len(MIGRATIONS))

    def test_migrates_an_older_database(self) -> None:
        path = Path(self.mktemp())
        path.mkdir()
        raw = sqlite3.connect(path / FILENAME)
        raw.execute("PRAGMA user_version=0")
        raw.close()
        db = Database(path / FILENAME)
        self.addCleanup(db.close)
        self.assertEqual(
            db.db.execute("PRAGMA user_version").fetchone()[0], len(MIGRATIONS)
        )
        self.assertEqual(db.db.execute("PRAGMA journal_mode").fetchone()[0], "wal")
        # FULL: a commit is on disk before it is acknowledged.
        self.assertEqual(db.db.execute("PRAGMA synchronous").fetchone()[0], 2)


class ThreadedStoreTests(TestCase):
    """`SQLiteStore` on a file, its calls on the worker thread."""

    def setUp(self) -> None:
        self.data_dir = Path(self.mktemp())
        self.store = SQLiteStore.in_directory(self.data_dir, reactor)

    async def test_round_trip_and_reopen(self) -> None:
        await self.store.create_account(account("alice"))
        with self.assertRaises(AccountExistsError):
            await self.store.create_account(account("ALICE"))
        await self.store.register_channel(RegisteredChannel("#a", "alice", 1.0))
        await self.store.close()
        await self.store.close()
        self.assertTrue((self.data_dir / FILENAME).exists())
        again = SQLiteStore.in_directory(self.data_dir, reactor)
        self.addCleanup(again.close)
        found = await again.get_account("Alice")
        self.assertEqual(found.name if found else None, "alice")
        self.assertEqual([c.name for c in await again.list_channels()], ["#a"])
        self.assertEqual([a.name for a in await again.list_accounts()], ["alice"])

    async def test_closed_store_refuses_work(self) -> None:
        await self.store.close()
        with self.assertRaises(RuntimeError):
            await self.store.get_account("alice")


#: A child that creates an account, says so, then waits to be killed.
_WRITER = """
import sys, time
from pathlib import Path
from chat.storage import Account
from chat.storage.sqlite import Database
db = Database(Path(sys.argv[1]))
for n in range(int(sys.argv[2])):
    db.create_account(Account(f"user{n}", "scrypt$x", created=1.0))
    print(n, flush=True)
time.sleep(60)
"""


class CrashTests(TestCase):
    def test_kill_9_loses_nothing_acknowledged(self) -> None:
        """Accounts the writer reported stored survive SIGKILL."""
        path = Path(self.mktemp()).absolute() / FILENAME
        child = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), "20"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parent.parent,
        )
        assert child.stdout is not None
        acknowledged = [child.stdout.readline() for _ in range(20)]
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        self.assertEqual(child.returncode, -signal.SIGKILL)
        self.assertEqual(len([line for line in acknowledged if line]), 20)
        self.assertTrue(Path(str(path) + "-wal").exists(), "killed with a live WAL")
        db = Database(path)
        self.addCleanup(db.close)
        self.assertEqual(len(db.list_accounts()), 20)
