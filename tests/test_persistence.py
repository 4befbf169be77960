"""End to end over loopback: restarts keep accounts and channels, and two
clients registering the same account at once get exactly one account."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast

from twisted.internet import reactor as _reactor
from twisted.internet.defer import gatherResults
from twisted.internet.interfaces import IReactorFromThreads, IReactorTCP
from twisted.trial.unittest import TestCase

from chat.accounts import use_store
from chat.config import ServerConfig
from chat.message import Message
from chat.server import ChatServer
from chat.storage import Store
from chat.storage.sqlite import FILENAME, Database, SQLiteStore
from tests import services_support
from tests.accounts_support import PASSWORD, TEST_COST, plain
from tests.e2e_support import LineClient, connect_plain, is_command, port_of

reactor = cast(IReactorFromThreads, _reactor)


def notice_from(service: str, text: str = "") -> object:
    def match(message: Message) -> bool:
        return (
            message.command == "NOTICE"
            and (message.source or "").startswith(service + "!")
            and text in message.params[-1]
        )

    return match


class Running:
    """A server on loopback keeping its accounts in the store *make_store*
    opens."""

    def __init__(self, make_store: Callable[[], Store]) -> None:
        self.make_store = make_store
        self.server = ChatServer(
            ServerConfig(server_name="irc.test", network="TestNet"), _reactor
        )
        self.clients: list[LineClient] = []

    async def start(self) -> None:
        await use_store(self.server, self.make_store(), TEST_COST)
        self.port = cast(IReactorTCP, _reactor).listenTCP(
            0, self.server, interface="127.0.0.1"
        )

    async def client(self) -> LineClient:
        client = await connect_plain(port_of(self.port))
        self.clients.append(client)
        return client

    async def stop(self) -> None:
        await self.port.stopListening()
        for client in self.clients:
            client.transport.loseConnection()
            await client.lost
        await self.server.accounts.store.close()


#: A server in a child process: prints its port, then serves until killed.
_SERVER = """
import sys
import os
import signal
import subprocess
import sys
from pathlib import Path
from twisted.internet import reactor
from chat.accounts import PasswordCost, use_store
from chat.config import ServerConfig
from chat.server import ChatServer
from chat.storage.sqlite import SQLiteStore

server = ChatServer(ServerConfig(server_name="irc.test"), reactor)

def listen(_):
    port = reactor.listenTCP(0, server, interface="127.0.0.1")
    print(port.getHost().port, flush=True)

cost = PasswordCost(16, 16)
store = SQLiteStore.in_directory(Path(sys.argv[1]), reactor)
use_store(server, store, cost).addCallback(listen)
reactor.run()
"""


class PersistenceMixin:
    """Tests every store passes; subclasses say how to open it."""

    def make_store(self) -> Store:
        raise NotImplementedError

    async def started(self) -> Running:
        running = Running(self.make_store)
        await running.start()
        cast(TestCase, self).addCleanup(running.stop)
        return running

    async def test_accounts_and_channels_survive_a_restart(self) -> None:
        first = Running(self.make_store)
        await first.start()
        alice = await first.client()
        await alice.register("alice")
        alice.send("PRIVMSG", "NickServ", f"REGISTER {PASSWORD}")
        await alice.wait_for(is_command("900"))
        alice.send("JOIN", "#chat")
        alice.send("TOPIC", "#chat", "Set before registering")
        alice.send("MODE", "#chat", "+m")
        alice.send("CS", "REGISTER", "#chat")
        await alice.wait_for(notice_from("ChanServ", "registered to alice"))
        alice.send("TOPIC", "#chat", "Kept across restarts")
        await alice.sync()
        await first.stop()

        second = await self.started()
        bob = await second.client()
        await bob.register("bob")
        bob.send("JOIN", "#chat")
        topic = await bob.wait_for(is_command("332"))
        self.assertEqual(topic.params[-1], "Kept across restarts")
        bob.send("MODE", "#chat")
        modes = await bob.wait_for(is_command("324"))
        self.assertEqual(modes.params[2], "+mnt")

        alice = await second.client()
        alice.send("CAP", "REQ", "sasl")
        alice.send("NICK", "alice")
        alice.send("USER", "alice", "0", "*", "Alice")
        alice.send("AUTHENTICATE", "PLAIN")
        await alice.wait_for(is_command("AUTHENTICATE"))
        alice.send("AUTHENTICATE", plain("alice", PASSWORD))
        await alice.wait_for(is_command("903"))
        alice.send("CAP", "END")
        await alice.wait_for(is_command("001"))
        alice.send("JOIN", "#chat")
        mode = await bob.wait_for(is_command("MODE"))
        self.assertEqual(mode.source, "ChanServ!ChanServ@irc.test")
        self.assertEqual(mode.params, ("#chat", "+o", "alice"))
        alice.send("CS", "INFO", "#chat")
        await alice.wait_for(notice_from("ChanServ", "founder alice"))

    async def test_concurrent_registration_has_one_winner(self) -> None:
        running = await self.started()
        clients = [await running.client() for _ in range(2)]
        for n, client in enumerate(clients):
            await client.register(f"user{n}")
        for client in clients:
            client.send("REGISTER", "shared", "*", PASSWORD)
        answers = await gatherResults(
            [
                client.wait_for(
                    lambda m: (
                        m.command in ("FAIL", "REGISTER")
                        and m.params[:1] in (("REGISTER",), ("SUCCESS",))
                    )
                )
                for client in clients
            ]
        )
        outcomes = sorted(
            m.params[0] if m.command == "REGISTER" else m.params[1] for m in answers
        )
        self.assertEqual(outcomes, ["ACCOUNT_EXISTS", "SUCCESS"])
        accounts = await running.server.accounts.store.list_accounts()
        self.assertEqual([a.name for a in accounts], ["shared"])


class SQLitePersistenceTests(PersistenceMixin, TestCase):
    def setUp(self) -> None:
        self.data_dir = Path(self.mktemp())

    def make_store(self) -> Store:
        return SQLiteStore.in_directory(self.data_dir, reactor)

    async def test_acknowledged_registration_is_on_disk(self) -> None:
        """Once REGISTER SUCCESS is sent, another reader of the file sees it."""
        running = await self.started()
        client = await running.client()
        await client.register("carol")
        client.send("REGISTER", "*", "*", PASSWORD)
        await client.wait_for(is_command("REGISTER", "SUCCESS"))
        database = Database(self.data_dir / FILENAME)
        self.addCleanup(database.close)
        self.assertIsNotNone(database.get_account("carol"))

    async def test_kill_9_after_success_keeps_the_account(self) -> None:
        """A server killed with SIGKILL right after REGISTER SUCCESS."""
        data_dir = self.data_dir.absolute()
        child = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(data_dir)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parent.parent,
        )
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        assert child.stdout is not None
        self.addCleanup(child.stdout.close)
        port = int(child.stdout.readline())
        client = await connect_plain(port)
        await client.register("dave")
        client.send("REGISTER", "*", "*", PASSWORD)
        await client.wait_for(is_command("REGISTER", "SUCCESS"))
        os.kill(child.pid, signal.SIGKILL)
        await client.lost
        database = Database(data_dir / FILENAME)
        self.addCleanup(database.close)
        self.assertIsNotNone(database.get_account("dave"))


class PostgresPersistenceTests(PersistenceMixin, TestCase):
    """The same on PostgreSQL, and two servers sharing one database."""

    def setUp(self) -> None:
        self.dsn = services_support.postgres_database()

    def make_store(self) -> Store:
        from chat.storage.postgres import PostgresStore

        return PostgresStore(self.dsn, reactor)

    async def test_two_servers_one_database_one_account(self) -> None:
        """Clients of two servers registering one account: one winner, and
        the account logs in on either server."""
        servers = [await self.started(), await self.started()]
        clients = [await server.client() for server in servers]
        for n, client in enumerate(clients):
            await client.register(f"user{n}")
        for client in clients:
            client.send("REGISTER", "shared", "*", PASSWORD)
        answers = await gatherResults(
            [
                client.wait_for(lambda m: m.command in ("FAIL", "REGISTER"))
                for client in clients
            ]
        )
        outcomes = sorted(
            m.params[0] if m.command == "REGISTER" else m.params[1] for m in answers
        )
        self.assertEqual(outcomes, ["ACCOUNT_EXISTS", "SUCCESS"])
        for server in servers:
            client = await server.client()
            client.send("CAP", "REQ", "sasl")
            client.send("NICK", "someone")
            client.send("USER", "someone", "0", "*", "Someone")
            client.send("AUTHENTICATE", "PLAIN")
            await client.wait_for(is_command("AUTHENTICATE"))
            client.send("AUTHENTICATE", plain("shared", PASSWORD))
            await client.wait_for(is_command("903"))
