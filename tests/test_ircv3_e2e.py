"""End to end over loopback TLS: IRCv3 capabilities and history that
survives a disconnect and a server restart (SQLite under the data dir)."""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import TestCase

from chat.message import Message
from tests.e2e_support import LineClient, Serving, is_command

CAPS = "batch server-time message-tags labeled-response draft/chathistory"


async def with_caps(client: LineClient, nick: str) -> LineClient:
    client.send("CAP", "LS", "302")
    client.send("CAP", "REQ", CAPS)
    await client.wait_for(is_command("CAP", "*", "ACK"))
    client.send("CAP", "END")
    await client.register(nick)
    return client


async def history(client: LineClient, target: str, label: str) -> list[Message]:
    """CHATHISTORY LATEST *target*: the messages of the labeled batch."""
    client.sendLine(f"@label={label} CHATHISTORY LATEST {target} * 50".encode())
    start = await client.wait_for(lambda m: m.tags.get("label") == label)
    assert start.command == "BATCH", start
    ref = start.params[0][1:]
    await client.wait_for(is_command("BATCH", f"-{ref}"))
    return client.take(lambda m: m.tags.get("batch") == ref)


class HistoryEndToEndTests(Serving, TestCase):
    async def test_read_what_was_said_while_away_even_after_a_restart(self) -> None:
        data_dir = Path(self.mktemp())
        server = self.serve(data_dir=data_dir)
        alice = await with_caps(await server.client(), "alice")
        bob = await with_caps(await server.client(), "bob")
        for client in (alice, bob):
            client.send("JOIN", "#team")
            await client.wait_for(is_command("366"))
        alice.send("PRIVMSG", "bob", "ping me back")
        await bob.wait_for(is_command("PRIVMSG", "bob"))
        bob.send("QUIT", "later")
        await bob.lost
        alice.send("PRIVMSG", "#team", "while you were out")
        await alice.sync()
        await server.stop()

        server = self.serve(data_dir=data_dir)
        bob = await with_caps(await server.client(), "bob")
        bob.send("JOIN", "#team")
        await bob.wait_for(is_command("366"))
        [said] = await history(bob, "#team", "h1")
        self.assertEqual(said.params, ("#team", "while you were out"))
        self.assertEqual(said.source.split("!")[0] if said.source else "", "alice")
        self.assertIn("msgid", said.tags)
        self.assertIn("time", said.tags)
        [direct] = await history(bob, "alice", "h2")
        self.assertEqual(direct.params, ("bob", "ping me back"))

        carol = await with_caps(await server.client(), "carol")
        carol.sendLine(b"@label=h3 CHATHISTORY LATEST #team * 50")
        refused = await carol.wait_for(lambda m: m.tags.get("label") == "h3")
        self.assertEqual(refused.command, "FAIL")
        self.assertEqual(refused.params[1], "INVALID_TARGET")

    async def test_labeled_echo_and_tagmsg(self) -> None:
        server = self.serve()
        alice = await with_caps(await server.client(), "alice")
        bob = await with_caps(await server.client(), "bob")
        alice.send("CAP", "REQ", "echo-message")
        await alice.wait_for(is_command("CAP", "alice", "ACK"))
        alice.sendLine(b"@label=e1;+typing=active TAGMSG bob")
        echoed = await alice.wait_for(lambda m: m.tags.get("label") == "e1")
        got = await bob.wait_for(is_command("TAGMSG"))
        self.assertEqual(echoed.tags["msgid"], got.tags["msgid"])
        self.assertEqual(got.tags["+typing"], "active")
