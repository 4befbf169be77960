"""Bad input: explicit cases (issue 2) and fuzzing from many connections.

Every test here ends by checking that clients who did nothing wrong can
still chat.  Trial fails a test when anything is logged as an error, so a
handler bug caught by ``ChatProtocol.dispatch`` fails the fuzz tests too.

The fuzz volume can be raised from the environment for a long run:
``CHAT_FUZZ_LINES=1000000 CHAT_FUZZ_SEED=7 CHAT_FUZZ_LOOPBACK_LINES=5000
trial tests.test_fuzz`` (lines in total on StringTransports; lines per each
of 20 loopback connections).
"""

from __future__ import annotations

import os
import random
import string
from collections.abc import Iterator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from chat import numerics
from chat.commands import COMMANDS
from chat.config import Limits
from chat.message import Message, parse
from tests.e2e_support import PLAIN_LOOPBACK, start_server
from tests.support import UNPACED, FakeClient, Harness

FUZZ_LINES = int(os.environ.get("CHAT_FUZZ_LINES", "20000"))
TOO_MANY = "Too many parameters (at most 15)"
FUZZ_SEED = int(os.environ.get("CHAT_FUZZ_SEED", "20261125"))


class Sentinels:
    """Two well-behaved users in their own channel, checked after junk."""

    def __init__(self, harness: Harness) -> None:
        self.alice = harness.register("zsenta")
        self.bob = harness.register("zsentb")
        for client in (self.alice, self.bob):
            client.send("JOIN #zsentinel")
        self.alice.raw()
        self.bob.raw()
        self.count = 0

    def check(self, case: TestCase) -> None:
        """Alice and Bob exchange one message each way."""
        self.count += 1
        text = f"probe {self.count}"
        self.alice.send(f"PRIVMSG #zsentinel :{text}")
        self.bob.send(f"PRIVMSG zsenta :{text}")
        expected = {
            self.bob: f":zsenta!~zsenta@127.0.0.1 PRIVMSG #zsentinel :{text}",
            self.alice: f":zsentb!~zsentb@127.0.0.1 PRIVMSG zsenta :{text}",
        }
        for client, line in expected.items():
            lines = client.lines()
            case.assertIn(line, lines)
            for other in lines:
                if other.startswith("PING "):
                    client.send("PONG " + other[5:])
            case.assertFalse(client.disconnected)


class BadInputTests(TestCase):
    """Issue 2's list: each bad input gets its answer, others keep chatting."""

    def setUp(self) -> None:
        self.harness = Harness()
        self.sentinels = Sentinels(self.harness)
        self.client = self.harness.register("junk")
        self.client.send("JOIN #zsentinel")
        self.client.raw()
        self.sentinels.alice.raw()
        self.sentinels.bob.raw()

    def tearDown(self) -> None:
        self.sentinels.check(self)

    def assertStillChatting(self) -> None:
        """The junk sender itself is still connected and can talk."""
        self.assertFalse(self.client.disconnected)
        self.client.send("PRIVMSG #zsentinel :back to normal")
        self.assertEqual(
            self.sentinels.bob.lines(),
            [":junk!~junk@127.0.0.1 PRIVMSG #zsentinel :back to normal"],
        )
        self.sentinels.alice.raw()

    def test_oversize_line(self) -> None:
        self.client.send("PRIVMSG #zsentinel :" + "x" * 600)
        self.assertEqual(self.client.commands(), [numerics.ERR_INPUTTOOLONG])
        self.assertEqual(self.sentinels.bob.lines(), [])
        self.assertStillChatting()

    def test_line_longer_than_any_buffer(self) -> None:
        self.client.send_raw(b"PRIVMSG #zsentinel :" + b"y" * 20000)
        self.client.send_raw(b"y" * 20000 + b"\r\nPING :after\r\n")
        self.assertEqual(
            self.client.lines(),
            [
                ":irc.test 417 junk :Input line was too long",
                ":irc.test PONG irc.test after",
            ],
        )
        self.assertEqual(self.sentinels.bob.lines(), [])
        self.assertStillChatting()

    def test_oversize_tags(self) -> None:
        self.client.send("@" + "a=b;" * 3000 + " PRIVMSG #zsentinel :hi")
        self.assertEqual(self.client.commands(), [numerics.ERR_INPUTTOOLONG])
        self.assertStillChatting()

    def test_nul_bytes(self) -> None:
        self.client.send_raw(b"PRIVMSG #zsentinel :a\x00b\r\n")
        self.assertEqual(
            [m.params[:2] for m in self.client.messages()],
            [("*", "INVALID_MESSAGE")],
        )
        self.assertEqual(self.sentinels.bob.lines(), [])
        self.assertStillChatting()

    def test_invalid_utf8(self) -> None:
        self.client.send_raw(b"PRIVMSG #zsentinel :caf\xe9 \xff\xfe\r\n")
        self.assertEqual(
            self.client.lines(),
            [
                ":irc.test FAIL PRIVMSG INVALID_UTF8"
                " :Message rejected: it is not valid UTF-8"
            ],
        )
        self.assertEqual(self.sentinels.bob.lines(), [])
        self.client.send_raw(b"\xff\xfe\r\n")
        self.assertEqual(self.client.messages()[0].params[:2], ("*", "INVALID_UTF8"))
        self.client.send("CAP REQ :labeled-response batch")
        self.client.raw()
        self.client.send_raw(b"@label=x1 PRIVMSG #zsentinel :\xff\r\n")
        [fail] = self.client.messages()
        self.assertEqual(
            (fail.tags.get("label"), fail.params[1]), ("x1", "INVALID_UTF8")
        )
        self.assertStillChatting()

    def test_empty_lines_are_ignored(self) -> None:
        self.client.send_raw(b"\r\n\n   \r\n \n")
        self.assertEqual(self.client.lines(), [])
        self.assertStillChatting()

    def test_unknown_command(self) -> None:
        self.client.send("FROBNICATE now", "123", "\x01VERSION\x01")
        self.assertEqual(
            self.client.lines(),
            [
                ":irc.test 421 junk FROBNICATE :Unknown command",
                ":irc.test 421 junk \x01VERSION\x01 :Unknown command",
            ],
        )
        self.assertStillChatting()

    def test_too_many_params(self) -> None:
        self.client.send("PRIVMSG " + " ".join(f"p{n}" for n in range(16)))
        self.assertEqual(
            self.client.lines(),
            [f":irc.test FAIL PRIVMSG INVALID_MESSAGE :{TOO_MANY}"],
        )
        self.assertEqual(self.sentinels.bob.lines(), [])
        self.client.send("PING " + " ".join(f"p{n}" for n in range(15)))
        self.assertEqual(self.client.commands(), ["PONG"])
        self.assertStillChatting()

    def test_malformed_lines(self) -> None:
        for line in (":onlysource", ":", "@", "@=x PING a", "@a :src"):
            self.client.send(line)
            self.assertEqual(
                [m.params[:2] for m in self.client.messages()],
                [("*", "INVALID_MESSAGE")],
                line,
            )
        self.assertStillChatting()

    def test_junk_before_registration(self) -> None:
        newcomer = self.harness.connect()
        newcomer.send_raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n")
        newcomer.send("JOIN #zsentinel", "PRIVMSG #zsentinel :sneaky", "BLAH")
        newcomer.send_raw(b"\x00\x00\x00\n")
        self.assertEqual(
            newcomer.commands(),
            [
                "FAIL",
                numerics.ERR_NOTREGISTERED,
                numerics.ERR_NOTREGISTERED,
                numerics.ERR_UNKNOWNCOMMAND,
                "FAIL",
            ],
        )
        self.assertEqual(self.sentinels.bob.lines(), [])
        newcomer.send("NICK late", "USER late 0 * :Late")
        self.assertTrue(newcomer.conn.registered)
        self.assertStillChatting()


# -- the seeded junk generator ------------------------------------------------------

WORDS = [
    "",
    "*",
    "0",
    "-1",
    "99999999999999999999",
    ":",
    "::",
    ",",
    ",,,",
    "#",
    "&",
    "@#f1",
    "+#f2",
    "#f1,#f2,#f3",
    "*!*@*",
    "a!b@c",
    "+b",
    "-b",
    "+o",
    "-o",
    "+v",
    "+lk",
    "+imnst",
    "-imnst",
    "+i",
    "+w",
    "+o-v+b",
    "b",
    "e",
    "I",
    "LS",
    "302",
    "REQ",
    "END",
    "LIST",
    "ACK",
    "* :",
    "héllo",
    "日本語",
    "💥",
    "\x01ACTION waves\x01",
    "\x02\x03" + "4,5",
    "a" * 64,
    "x" * 400,
    "LATEST",
    "BEFORE",
    "AFTER",
    "timestamp=2026-01-01T00:00:00.000Z",
    "msgid=abc",
    "+",
    "-",
    "<",
    ">",
    "%",
    "%t,%n",
    "o",
]


def junk_word(rng: random.Random, nicks: list[str]) -> str:
    roll = rng.random()
    if roll < 0.3:
        return rng.choice(nicks)
    if roll < 0.5:
        return rng.choice(["#f", "&f", "#F", "#f"]) + str(rng.randrange(6))
    if roll < 0.85:
        return rng.choice(WORDS)
    alphabet = string.printable + "éß中\u200b\ufeff"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))


def junk_line(
    rng: random.Random, nicks: list[str], commands: list[str], quits: bool = True
) -> bytes:
    """One line: mostly plausible commands with odd parameters, some garbage."""
    roll = rng.random()
    if roll < 0.002 and quits:
        return b"QUIT :fuzzed out"
    if roll < 0.08:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(600)))
    if roll < 0.1:
        return b"x" * rng.choice([509, 510, 511, 512, 9000])
    parts: list[str] = []
    if rng.random() < 0.1:
        parts.append("@" + ";".join(junk_word(rng, nicks) for _ in range(3)))
    if rng.random() < 0.05:
        parts.append(":" + junk_word(rng, nicks))
    parts.append(rng.choice(commands) if rng.random() < 0.9 else junk_word(rng, nicks))
    parts += [junk_word(rng, nicks) for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 17]))]
    if rng.random() < 0.5:
        parts.append(":" + " ".join(junk_word(rng, nicks) for _ in range(3)))
    line = " ".join(parts).replace("\n", " ").encode("utf-8", "surrogatepass")
    if rng.random() < 0.05:
        cut = rng.randrange(len(line) + 1)
        line = line[:cut] + bytes([rng.randrange(256)]) + line[cut:]
    return line.replace(b"\n", b"")


#: Line ends, mostly the usual ones.
TERMINATORS = [b"\r\n"] * 6 + [b"\n"] * 3 + [b"\r\r\n"]


def junk_stream(
    rng: random.Random,
    nicks: list[str],
    commands: list[str],
    count: int,
    quits: bool = True,
) -> Iterator[bytes]:
    """*count* lines with assorted terminators, cut into arbitrary chunks."""
    data = b"".join(
        junk_line(rng, nicks, commands, quits) + rng.choice(TERMINATORS)
        for _ in range(count)
    )
    while data:
        size = rng.choice([1, 7, 64, 512, 4096])
        yield data[:size]
        data = data[size:]


class SeededFuzzTests(TestCase):
    """Many StringTransport connections on one server, fed seeded junk."""

    CONNECTIONS = 40

    def test_junk_from_many_connections(self) -> None:
        rng = random.Random(FUZZ_SEED)
        harness = Harness(limits=Limits(flood_max_queued=500))
        sentinels = Sentinels(harness)
        nicks = [f"fz{n}" for n in range(self.CONNECTIONS)] + ["zsentinel"]
        commands = [*sorted(set(COMMANDS) - {"QUIT"}), "FOO", "001", "ERROR", "DIE"]
        clients: list[FakeClient] = []
        opened = lines = 0

        def connect() -> FakeClient:
            nonlocal opened
            opened += 1
            host = "127.0.0.1" if rng.random() < 0.9 else f"203.0.113.{opened % 250}"
            if rng.random() < 0.6:
                client = harness.connect(host)
                nick = rng.choice(nicks[:-1])
                client.send(f"NICK {nick}{opened}", f"USER u{opened} 0 * :fuzz")
                if rng.random() < 0.2:
                    client.conn.modes.add("o")
                return client
            return harness.connect(host)

        clients = [connect() for _ in range(self.CONNECTIONS)]
        batch = 50
        while lines < FUZZ_LINES:
            index = rng.randrange(len(clients))
            client = clients[index]
            for chunk in junk_stream(rng, nicks, commands, batch):
                client.send_raw(chunk)
                lines += chunk.count(b"\n")
                if client.disconnected:
                    break
            client.raw()
            if client.disconnected:
                client.conn.connectionLost()
                clients[index] = connect()
            if rng.random() < 0.2:
                sentinels.check(self)  # which also keeps them from idling out
                harness.clock.advance(rng.choice([0, 0.5, 3, 30]))
        sentinels.check(self)
        self.assertGreaterEqual(opened, self.CONNECTIONS)
        print(f"\nfuzz: seed {FUZZ_SEED}, {lines} lines, {opened} connections")


class HypothesisFuzzTests(TestCase):
    """Property: no input makes a handler raise or silences the others."""

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        chunks=st.lists(st.binary(max_size=700), max_size=8), registered=st.booleans()
    )
    def test_arbitrary_bytes(self, chunks: list[bytes], registered: bool) -> None:
        harness = Harness()
        sentinels = Sentinels(harness)
        client = harness.register("fuzzy") if registered else harness.connect()
        for chunk in chunks:
            client.send_raw(chunk)
        for line in client.lines():
            parse(line)
        sentinels.check(self)

    @settings(max_examples=300, deadline=None)
    @given(
        command=st.sampled_from(sorted(COMMANDS)),
        params=st.lists(
            st.text(
                st.characters(
                    blacklist_categories=["Cs"], blacklist_characters="\r\n\0"
                ),
                max_size=30,
            ),
            max_size=6,
        ),
    )
    def test_any_parameters_to_any_command(
        self, command: str, params: list[str]
    ) -> None:
        harness = Harness()
        sentinels = Sentinels(harness)
        client = harness.register("fuzzy")
        client.send("JOIN #f1")
        client.conn.modes.add("o")
        client.raw()
        line = Message(command, tuple(p for p in params if p)).to_line()
        if params and params[-1] == "":
            line += " :"
        client.send_raw(line.encode("utf-8") + b"\r\n")
        sentinels.check(self)


class JunkSender(Protocol):
    """A raw connection that writes junk and waits for its final PONG."""

    def __init__(self) -> None:
        self.received = b""
        self.done: Deferred[None] = Deferred()
        self.lost: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if not self.done.called and b"fuzz-done" in self.received:
            self.done.callback(None)

    def connectionLost(self, reason: object = None) -> None:
        if not self.done.called:
            self.done.callback(None)
        self.lost.callback(None)


class LoopbackFuzzTests(TestCase):
    """Junk over real sockets while two clients keep chatting."""

    CONNECTIONS = 20
    LINES_EACH = int(os.environ.get("CHAT_FUZZ_LOOPBACK_LINES", "300"))

    async def test_junk_over_loopback(self) -> None:
        server = start_server(self, PLAIN_LOOPBACK, limits=UNPACED)
        alice = await server.plain_client("alice")
        bob = await server.plain_client("bob")
        for client in (alice, bob):
            client.send("JOIN", "#chat")
            await client.wait_for(lambda m: m.command == "366")
        rng = random.Random(FUZZ_SEED)
        nicks = ["alice", "bob", "fz1", "fz2"]
        commands = [*sorted(set(COMMANDS) - {"QUIT"}), "FOO"]
        senders: list[JunkSender] = []
        for n in range(self.CONNECTIONS):
            endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", server.plain_port)
            sender = await connectProtocol(endpoint, JunkSender())
            senders.append(sender)
            if n % 2:
                sender.transport.write(b"NICK lf%d\r\nUSER x 0 * :x\r\n" % n)
            stream = junk_stream(rng, nicks, commands, self.LINES_EACH, quits=False)
            for chunk in stream:
                sender.transport.write(chunk)
            sender.transport.write(b"\r\nPING :fuzz-done\r\n")
        for n in range(5):
            text = f"still here {n}"
            alice.send("PRIVMSG", "#chat", text)
            message = await bob.wait_for(
                lambda m, text=text: m.command == "PRIVMSG" and m.params[-1] == text
            )
            self.assertEqual(message.params, ("#chat", text))
            await deferLater(reactor, 0.01)
        for sender in senders:
            await sender.done
            self.assertIn(b"fuzz-done", sender.received)
        print(f"\nloopback fuzz: {self.CONNECTIONS * self.LINES_EACH} lines")
        alice.send("PRIVMSG", "#chat", "after the junk")
        await bob.wait_for(lambda m: m.params[-1:] == ("after the junk",))
        for sender in senders:
            sender.transport.loseConnection()
        for sender in senders:
            await sender.lost
