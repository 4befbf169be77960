"""CHATHISTORY end to end over loopback TLS, on each history backend: the
same selections, privacy and restart on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from twisted.trial.unittest import TestCase

from chat.message import Message
from tests import services_support
from tests.e2e_support import LineClient, RunningServer, is_command, start_server

CAPS = "batch server-time message-tags labeled-response draft/chathistory"


async def joined(server: RunningServer, nick: str, *channels: str) -> LineClient:
    """A client with the history capabilities, registered, in *channels*."""
    client = await server.client()
    client.send("CAP", "LS", "302")
    client.send("CAP", "REQ", CAPS)
    await client.wait_for(is_command("CAP", "*", "ACK"))
    client.send("CAP", "END")
    await client.register(nick)
    for channel in channels:
        client.send("JOIN", channel)
        await client.wait_for(is_command("366"))
    return client


class Asker:
    """Sends labeled CHATHISTORY commands and collects their batches."""

    def __init__(self, client: LineClient) -> None:
        self.client = client
        self.count = 0

    async def batch(self, *params: str) -> list[Message]:
        """The messages of the batch answering ``CHATHISTORY params``."""
        self.count += 1
        label = f"q{self.count}"
        line = " ".join(("CHATHISTORY", *params))
        self.client.sendLine(f"@label={label} {line}".encode())
        start = await self.client.wait_for(lambda m: m.tags.get("label") == label)
        assert start.command == "BATCH", start
        ref = start.params[0][1:]
        await self.client.wait_for(is_command("BATCH", f"-{ref}"))
        return self.client.take(lambda m: m.tags.get("batch") == ref)

    async def texts(self, *params: str) -> list[str]:
        return [m.params[-1] for m in await self.batch(*params)]


class HistoryStoresMixin:
    """Tests each backend passes; subclasses give the ``database`` setting."""

    def database(self) -> str:
        raise NotImplementedError

    def setUp(self) -> None:
        case = cast(TestCase, self)
        self.settings: dict[str, Any] = {
            "database": self.database(),
            "data_dir": Path(case.mktemp()),
        }

    def start(self) -> RunningServer:
        return start_server(cast(TestCase, self), **self.settings)

    async def test_selections(self) -> None:
        t = cast(TestCase, self)
        server = self.start()
        alice = await joined(server, "alice", "#team")
        bob = await joined(server, "bob", "#team")
        for n in range(1, 7):
            alice.send("PRIVMSG", "#team", f"m{n}")
            await bob.wait_for(is_command("PRIVMSG", "#team", f"m{n}"))
        ask = Asker(bob)
        said = await ask.batch("LATEST", "#team", "*", "10")
        ids = [m.tags["msgid"] for m in said]
        t.assertEqual([m.params[-1] for m in said], [f"m{n}" for n in range(1, 7)])
        t.assertEqual(await ask.texts("LATEST", "#team", "*", "2"), ["m5", "m6"])
        t.assertEqual(
            await ask.texts("BEFORE", "#team", f"msgid={ids[3]}", "2"), ["m2", "m3"]
        )
        t.assertEqual(
            await ask.texts("AFTER", "#team", f"msgid={ids[1]}", "2"), ["m3", "m4"]
        )
        t.assertEqual(
            await ask.texts("AROUND", "#team", f"msgid={ids[2]}", "3"),
            ["m2", "m3", "m4"],
        )
        t.assertEqual(
            await ask.texts(
                "BETWEEN", "#team", f"msgid={ids[5]}", f"msgid={ids[0]}", "10"
            ),
            ["m2", "m3", "m4", "m5"],
        )
        targets = await ask.batch(
            "TARGETS",
            "timestamp=2000-01-01T00:00:00.000Z",
            "timestamp=2100-01-01T00:00:00.000Z",
            "10",
        )
        t.assertEqual([m.params[:2] for m in targets], [("TARGETS", "#team")])

    async def test_private_history_survives_a_restart(self) -> None:
        t = cast(TestCase, self)
        server = self.start()
        alice = await joined(server, "alice")
        bob = await joined(server, "bob")
        alice.send("PRIVMSG", "bob", "between us")
        await bob.wait_for(is_command("PRIVMSG", "bob", "between us"))
        await alice.sync()
        await server.stop()

        server = self.start()
        bob = await joined(server, "bob")
        t.assertEqual(
            await Asker(bob).texts("LATEST", "alice", "*", "10"), ["between us"]
        )
        carol = await joined(server, "carol")
        t.assertEqual(await Asker(carol).texts("LATEST", "alice", "*", "10"), [])
        t.assertEqual(await Asker(carol).texts("LATEST", "bob", "*", "10"), [])


class SQLiteHistoryStoreTests(HistoryStoresMixin, TestCase):
    def database(self) -> str:
        return "sqlite"


class PostgresHistoryStoreTests(HistoryStoresMixin, TestCase):
    def database(self) -> str:
        return services_support.postgres_database()
