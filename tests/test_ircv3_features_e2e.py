"""End to end over loopback TLS, on the SQLite history of a data dir:
multiline messages, their redaction, and search after a restart."""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import TestCase

from chat.message import Message
from tests.e2e_support import LineClient, Serving, is_command

BASE = "batch server-time message-tags labeled-response"
FULL = f"{BASE} draft/multiline soju.im/search draft/message-redaction echo-message"


async def connected(client: LineClient, nick: str, caps: str) -> LineClient:
    client.send("CAP", "LS", "302")
    client.send("CAP", "REQ", caps)
    await client.wait_for(is_command("CAP", "*", "ACK"))
    client.send("CAP", "END")
    await client.register(nick)
    client.send("JOIN", "#team")
    await client.wait_for(is_command("366"))
    return client


async def search(client: LineClient, attributes: str, label: str) -> list[Message]:
    """The messages of the labeled soju.im/search batch."""
    client.sendLine(f"@label={label} SEARCH {attributes}".encode())
    start = await client.wait_for(lambda m: m.tags.get("label") == label)
    assert start.command == "BATCH" and start.params[1] == "soju.im/search", start
    ref = start.params[0][1:]
    await client.wait_for(is_command("BATCH", f"-{ref}"))
    return client.take(lambda m: m.tags.get("batch") == ref)


class FeaturesEndToEndTests(Serving, TestCase):
    async def test_multiline_redact_and_search_survive_a_restart(self) -> None:
        data_dir = Path(self.mktemp())
        server = self.serve(data_dir=data_dir)
        alice = await connected(await server.client(), "alice", FULL)
        bob = await connected(await server.client(), "bob", FULL)
        carol = await connected(await server.client(), "carol", BASE)

        alice.sendLine(b"BATCH +p draft/multiline #team")
        alice.sendLine(b"@batch=p PRIVMSG #team :first line of the paste")
        alice.sendLine(b"@batch=p;draft/multiline-concat PRIVMSG #team :, continued")
        alice.sendLine(b"@batch=p PRIVMSG #team :second line")
        alice.sendLine(b"BATCH -p")
        opening = await bob.wait_for(is_command("BATCH"))
        self.assertEqual(opening.params[1:], ("draft/multiline", "#team"))
        await bob.wait_for(is_command("BATCH", f"-{opening.params[0][1:]}"))
        lines = bob.take(lambda m: m.tags.get("batch") == opening.params[0][1:])
        self.assertEqual(
            [(m.params[1], "draft/multiline-concat" in m.tags) for m in lines],
            [
                ("first line of the paste", False),
                (", continued", True),
                ("second line", False),
            ],
        )
        for text in ("first line of the paste", ", continued", "second line"):
            got = await carol.wait_for(is_command("PRIVMSG", "#team"))
            self.assertEqual(got.params[1], text)

        alice.send("PRIVMSG", "#team", "a needle to take back")
        echo = await alice.wait_for(
            is_command("PRIVMSG", "#team", "a needle to take back")
        )
        msgid = echo.tags["msgid"]
        alice.send("REDACT", "#team", msgid, "oops")
        redacted = await bob.wait_for(is_command("REDACT"))
        self.assertEqual(redacted.params, ("#team", msgid, "oops"))
        await alice.wait_for(is_command("REDACT"))
        await server.stop()

        server = self.serve(data_dir=data_dir)
        bob = await connected(await server.client(), "bob", FULL)
        self.assertEqual(await search(bob, "in=#team;text=needle", "s1"), [])
        found = await search(bob, "in=#team;text=LINE", "s2")
        self.assertEqual(
            [m.params[1] for m in found], ["first line of the paste", "second line"]
        )
        self.assertEqual(found[0].tags["msgid"], opening.tags["msgid"])
