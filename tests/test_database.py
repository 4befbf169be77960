"""The ``database`` setting: SQLite or PostgreSQL, chosen by one factory,
and the whole server on a real PostgreSQL that goes away and comes back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import cast

from twisted.internet.interfaces import IReactorFromThreads
from twisted.python import usage
from twisted.trial.unittest import TestCase

from chat.config import ConfigError, ServerConfig, load_config
from chat.history import HistoryConfig
from chat.history.postgres import PostgresHistory
from chat.history.sqlite import SQLiteHistory
from chat.metrics import ServerCollector
from chat.options import Options
from chat.storage import Account, RegisteredChannel, StoreUnavailableError
from chat.storage.factory import describe, open_stores
from chat.storage.postgres import PostgresStore
from chat.storage.sqlite import SQLiteStore
from chat.traffic import Traffic
from tests import services_support
from tests.accounts_support import plain
from tests.e2e_support import LineClient, RunningServer, is_command, reactor
from tests.e2e_support import start_server as start

PASSWORD = "long-enough-password"
HISTORY_CAPS = "batch server-time message-tags draft/chathistory sasl"


class SettingTests(TestCase):
    def write(self, text: str) -> Path:
        path = Path(self.mktemp())
        path.write_text(text)
        return path

    def test_sqlite_is_the_default(self) -> None:
        self.assertEqual(ServerConfig().database, "sqlite")
        self.assertEqual(load_config().database, "sqlite")

    def test_command_line_and_file(self) -> None:
        uri = "postgresql://chat@127.0.0.1:5432/chat"
        options = Options()
        options.parseOptions(["--database", uri])
        self.assertEqual(options.config.database, uri)
        top = self.write(f'database = "{uri}"\n')
        self.assertEqual(load_config(top).database, uri)
        table = self.write(
            f'[cluster]\nredis = "redis://127.0.0.1:6379/0"\ndatabase = "{uri}"\n'
        )
        config = load_config(table)
        self.assertEqual(config.database, uri)
        self.assertEqual(config.cluster.redis, "redis://127.0.0.1:6379/0")
        self.assertEqual(
            load_config(table, {"database": "sqlite"}).database,
            "sqlite",
            "the command line wins",
        )

    def test_bad_values_are_refused(self) -> None:
        options = Options()
        with self.assertRaises(usage.UsageError) as raised:
            options.parseOptions(["--database", "mysql://x@y/z"])
        self.assertIn("database must be 'sqlite' or a URI", str(raised.exception))
        secret = "postgresql://chat:hunter2@host/db?bogus=1"
        with self.assertRaises(ConfigError) as bad:
            load_config(None, {"database": secret})
        self.assertNotIn("hunter2", str(bad.exception))
        both = self.write(
            'database = "sqlite"\n[cluster]\ndatabase = "postgresql://a@b/c"\n'
        )
        with self.assertRaises(ConfigError) as twice:
            load_config(both)
        self.assertIn("not both", str(twice.exception))
        unknown = self.write("[cluster]\nnode = 1\n")
        with self.assertRaises(ConfigError) as other:
            load_config(unknown)
        self.assertIn("unknown setting 'node' in [cluster]", str(other.exception))

    def test_help_names_the_option(self) -> None:
        self.assertIn("--database", str(Options()))


class FactoryTests(TestCase):
    def test_describe_never_shows_the_password(self) -> None:
        self.assertEqual(
            describe("postgresql://chat:hunter2@db.example:6543/irc", Path("d")),
            "PostgreSQL chat@db.example:6543/irc",
        )
        self.assertEqual(describe("sqlite", Path("data")), "SQLite in data")

    async def test_sqlite_files_in_the_data_dir(self) -> None:
        data_dir = Path(self.mktemp())
        threads = cast(IReactorFromThreads, reactor)
        stores = open_stores("sqlite", data_dir, threads, HistoryConfig())
        self.assertIsInstance(stores.accounts, SQLiteStore)
        self.assertIsInstance(stores.history, SQLiteHistory)
        await stores.accounts.list_accounts()
        await stores.accounts.close()
        await stores.history.close()
        self.assertTrue((data_dir / "chat.db").exists())

    async def test_postgresql_uri(self) -> None:
        dsn = services_support.postgres_database()
        data_dir = Path(self.mktemp())
        threads = cast(IReactorFromThreads, reactor)
        stores = open_stores(dsn, data_dir, threads, HistoryConfig())
        self.addCleanup(stores.history.close)
        self.addCleanup(stores.accounts.close)
        self.assertIsInstance(stores.accounts, PostgresStore)
        self.assertIsInstance(stores.history, PostgresHistory)
        self.assertEqual(await stores.accounts.list_accounts(), [])
        self.assertFalse(data_dir.exists(), "nothing in the data directory")


def buffered(server: RunningServer) -> float:
    """The ``chat_history_buffered`` metric of *server*."""
    collector = ServerCollector(server.service.server, Traffic(), lambda: 0)
    for family in collector.collect():
        if family.name == "chat_history_buffered":
            return float(family.samples[0].value)
    raise AssertionError("no chat_history_buffered metric")


class PostgresServerTests(TestCase):
    """The whole server with ``database = postgresql://...``."""

    async def asyncSetUp(self) -> RunningServer:
        self.dsn = services_support.postgres_database()
        self.postgres = services_support.postgres()
        server = start(self, database=self.dsn)
        await server.service.storage_ready
        return server

    async def connect(self, server: RunningServer, nick: str) -> LineClient:
        client = await server.client()
        client.send("CAP", "LS", "302")
        client.send("CAP", "REQ", HISTORY_CAPS)
        client.send("NICK", nick)
        client.send("USER", nick, "0", "*", nick)
        await client.wait_for(is_command("CAP", "*", "ACK"))
        return client

    async def registered(self, server: RunningServer, nick: str) -> LineClient:
        client = await self.connect(server, nick)
        client.send("CAP", "END")
        await client.wait_for(lambda m: m.command in ("376", "422"))
        return client

    async def sasl(self, client: LineClient, account: str) -> str:
        """Log *client* in with PLAIN; the numeric it got (903 or 904)."""
        client.send("AUTHENTICATE", "PLAIN")
        await client.wait_for(is_command("AUTHENTICATE", "+"))
        client.send("AUTHENTICATE", plain(account, PASSWORD))
        answer = await client.wait_for(lambda m: m.command in ("903", "904"))
        return answer.command

    async def test_accounts_and_history_in_postgresql(self) -> None:
        server = await self.asyncSetUp()
        alice = await self.registered(server, "alice")
        alice.send("REGISTER", "alice", "*", PASSWORD)
        await alice.wait_for(is_command("REGISTER", "SUCCESS"))
        bob = await self.registered(server, "bob")
        alice.send("PRIVMSG", "bob", "kept in postgresql")
        await bob.wait_for(is_command("PRIVMSG", "bob", "kept in postgresql"))
        await server.stop()
        again = start(self, database=self.dsn)
        await again.service.storage_ready
        client = await self.connect(again, "alice")
        self.assertEqual(await self.sasl(client, "alice"), "903")
        client.send("CAP", "END")
        await client.wait_for(lambda m: m.command in ("376", "422"))
        client.send("CHATHISTORY", "LATEST", "bob", "*", "10")
        found = await client.wait_for(is_command("PRIVMSG", "bob"))
        self.assertEqual(found.params[-1], "kept in postgresql")

    async def test_postgresql_goes_away_and_comes_back(self) -> None:
        server = await self.asyncSetUp()
        alice = await self.registered(server, "alice")
        alice.send("REGISTER", "alice", "*", PASSWORD)
        await alice.wait_for(is_command("REGISTER", "SUCCESS"))
        bob = await self.registered(server, "bob")
        self.postgres.stop()
        self.addCleanup(self.postgres.start)

        # Registrations and logins get a clear temporary error.
        carol = await self.registered(server, "carol")
        carol.send("REGISTER", "carol", "*", PASSWORD)
        refused = await carol.wait_for(is_command("FAIL", "REGISTER"))
        self.assertEqual(refused.params[1], "TEMPORARILY_UNAVAILABLE")
        late = await self.connect(server, "late")
        self.assertEqual(await self.sasl(late, "alice"), "904")
        bob.send("PRIVMSG", "NickServ", f"IDENTIFY alice {PASSWORD}")
        said = await bob.wait_for(is_command("NOTICE", "bob"))
        self.assertIn("unavailable; try again later", said.params[-1])

        # Chat goes on; its history waits in memory, counted.
        alice.send("PRIVMSG", "bob", "while the database is away")
        await bob.wait_for(is_command("PRIVMSG", "bob", "while the database is away"))
        self.assertGreaterEqual(buffered(server), 1)
        bob.send("CHATHISTORY", "LATEST", "alice", "*", "10")
        failed = await bob.wait_for(is_command("FAIL", "CHATHISTORY"))
        self.assertEqual(failed.params[1], "MESSAGE_ERROR")

        # Back: the waiting history is written, logins work again.
        self.postgres.start()
        bob.send("CHATHISTORY", "LATEST", "alice", "*", "10")
        found = await bob.wait_for(is_command("PRIVMSG", "bob"))
        self.assertEqual(found.params[-1], "while the database is away")
        self.assertEqual(buffered(server), 0)
        self.assertEqual(await self.sasl(late, "alice"), "903")
        carol.send("REGISTER", "carol", "*", PASSWORD)
        await carol.wait_for(is_command("REGISTER", "SUCCESS"))
        # An outage is logged as warnings, without a traceback per call.
        self.assertEqual(self.flushLoggedErrors(StoreUnavailableError), [])

    async def test_registered_channels_load_once_the_database_is_back(self) -> None:
        dsn = services_support.postgres_database()
        store = PostgresStore(dsn, cast(IReactorFromThreads, reactor))
        await store.create_account(Account("keeper", "scrypt$x", created=1.0))
        await store.register_channel(
            RegisteredChannel("#kept", "keeper", 0.0, topic="Still here")
        )
        await store.close()
        postgres = services_support.postgres()
        postgres.stop()
        self.addCleanup(postgres.start)
        server = start(self, database=dsn)
        self.assertFalse(server.service.storage_ready.called)
        postgres.start()
        await server.service.storage_ready
        bob = await self.registered(server, "bob")
        bob.send("JOIN", "#kept")
        topic = await bob.wait_for(is_command("332"))
        self.assertEqual(topic.params[-1], "Still here")

    async def test_two_servers_on_one_database_share_accounts_and_history(
        self,
    ) -> None:
        first = await self.asyncSetUp()
        second = start(self, database=self.dsn)
        await second.service.storage_ready
        alice = await self.registered(first, "alice")
        alice.send("REGISTER", "alice", "*", PASSWORD)
        await alice.wait_for(is_command("REGISTER", "SUCCESS"))
        alice.send("JOIN", "#team")
        await alice.wait_for(is_command("366"))
        alice.send("PRIVMSG", "#team", "said on the first server")
        await alice.sync()

        other = await self.connect(second, "alice2")
        self.assertEqual(await self.sasl(other, "alice"), "903")
        other.send("CAP", "END")
        await other.wait_for(lambda m: m.command in ("376", "422"))
        other.send("JOIN", "#team")
        await other.wait_for(is_command("366"))
        other.send("CHATHISTORY", "LATEST", "#team", "*", "10")
        found = await other.wait_for(is_command("PRIVMSG", "#team"))
        self.assertEqual(found.params[-1], "said on the first server")


class StartCheckTests(TestCase):
    def test_the_data_directory_matters_only_to_sqlite(self) -> None:
        from chat.service import makeService

        blocker = Path(self.mktemp())
        blocker.write_text("a file where the data directory would go")
        config = ServerConfig(port=None, listen=("tcp:0",), data_dir=blocker / "d")
        with self.assertRaises(ConfigError):
            makeService(config, reactor=reactor)
        pg = replace(config, database="postgresql://chat@127.0.0.1:5432/chat")
        self.assertEqual(makeService(pg, reactor=reactor).data_dir, blocker / "d")
