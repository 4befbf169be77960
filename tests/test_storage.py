"""Tests for the SQLite store: accounts, channels, migrations, durability."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from chat.storage import (
    Account,
    AccountExistsError,
    ChannelExistsError,
    RegisteredChannel,
    ScramCredentials,
)
from chat.storage.sqlite import FILENAME, MIGRATIONS, Database, SQLiteStore

SCRAM = ScramCredentials(b"salt", 4096, b"s" * 32, b"k" * 32)


def account(name: str, **fields: object) -> Account:
    return Account(name=name, password_hash="scrypt$x", created=1.0, **fields)  # type: ignore[arg-type]


class DatabaseTests(TestCase):
    """The SQL, run synchronously on an in-memory database."""

    def setUp(self) -> None:
        self.db = Database(":memory:")
        self.addCleanup(self.db.close)

    def test_schema_version(self) -> None:
        version = self.db.db.execute("PRAGMA user_version").fetchone()[0]
        self.assertEqual(version, len(MIGRATIONS))
        self.assertEqual(self.db.migrate(), len(MIGRATIONS))

    def test_account_round_trip(self) -> None:
        self.db.create_account(
            account("Alice", scram=SCRAM, email="a@example.org", certfps=("ab" * 32,))
        )
        found = self.db.get_account("ALICE")
        assert found is not None
        self.assertEqual(found.name, "Alice")
        self.assertEqual(found.scram, SCRAM)
        self.assertEqual(found.email, "a@example.org")
        self.assertEqual(found.certfps, ("ab" * 32,))
        self.assertFalse(found.operator)
        self.assertIsNone(self.db.get_account("bob"))

    def test_names_fold_with_the_irc_casemapping(self) -> None:
        self.db.create_account(account("a[b]"))
        self.assertIsNotNone(self.db.get_account("A{B}"))
        self.assertRaises(AccountExistsError, self.db.create_account, account("A{b}"))

    def test_updates(self) -> None:
        self.db.create_account(account("alice"))
        self.assertTrue(self.db.set_password("alice", "scrypt$new", SCRAM))
        self.assertTrue(self.db.set_operator("alice", True))
        found = self.db.get_account("alice")
        assert found is not None
        self.assertEqual((found.password_hash, found.scram), ("scrypt$new", SCRAM))
        self.assertTrue(found.operator)
        self.assertFalse(self.db.set_password("nobody", "x", None))
        self.assertFalse(self.db.set_operator("nobody", True))

    def test_certfps(self) -> None:
        self.db.create_account(account("alice"))
        self.db.create_account(account("bob"))
        self.assertTrue(self.db.add_certfp("alice", "AA11"))
        self.assertFalse(self.db.add_certfp("bob", "aa11"), "taken by alice")
        self.assertFalse(self.db.add_certfp("nobody", "bb22"))
        found = self.db.account_for_certfp("aa11")
        self.assertEqual(found.name if found else None, "alice")
        self.assertFalse(self.db.remove_certfp("bob", "aa11"))
        self.assertTrue(self.db.remove_certfp("alice", "aa11"))
        self.assertIsNone(self.db.account_for_certfp("aa11"))

    def test_delete_account_drops_its_channels_and_certfps(self) -> None:
        self.db.create_account(account("alice", certfps=("ff",)))
        self.db.create_account(account("bob"))
        self.db.register_channel(RegisteredChannel("#a", "alice", 1.0))
        self.db.register_channel(
            RegisteredChannel("#b", "bob", 1.0, operators=("alice",))
        )
        self.assertTrue(self.db.delete_account("ALICE"))
        self.assertFalse(self.db.delete_account("alice"))
        self.assertIsNone(self.db.account_for_certfp("ff"))
        channels = self.db.list_channels()
        self.assertEqual([(c.name, c.operators) for c in channels], [("#b", ())])

    def test_channels(self) -> None:
        self.db.create_account(account("Alice"))
        self.db.create_account(account("bob"))
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
        self.db.register_channel(channel)
        self.assertRaises(
            ChannelExistsError,
            self.db.register_channel,
            RegisteredChannel("#chat", "bob", 1.0),
        )
        [stored] = self.db.list_channels()
        self.assertEqual(stored.founder, "Alice")
        self.assertEqual(stored.operators, ("bob",), "unknown accounts are skipped")
        self.assertEqual(
            (stored.topic, stored.modes, stored.key, stored.limit),
            ("hello", "mnt", "sesame", 10),
        )
        self.assertTrue(
            self.db.update_channel(
                RegisteredChannel("#chat", "bob", 5.0, topic="new", operators=())
            )
        )
        [stored] = self.db.list_channels()
        self.assertEqual(
            (stored.founder, stored.topic, stored.operators), ("bob", "new", ())
        )
        self.assertEqual(stored.registered, 5.0, "the registration time stays")
        self.assertFalse(self.db.update_channel(RegisteredChannel("#none", "bob", 1.0)))
        self.assertTrue(self.db.drop_channel("#CHAT"))
        self.assertFalse(self.db.drop_channel("#chat"))
        self.assertEqual(self.db.list_channels(), [])

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
