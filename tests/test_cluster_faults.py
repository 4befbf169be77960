"""Faults of a cluster with real processes: three nodes over TLS, one Redis,
one PostgreSQL, clients spread over the nodes; then Redis or PostgreSQL
goes away (its real server process is stopped) and comes back.

Redis comes back *empty* (the test Redis keeps nothing on disk), as after
a restart without persistence: the harder case, since every node must put
back what the network knew.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from chat.message import Message
from tests.accounts_support import PASSWORD
from tests.cluster_support import ClusterProcessCase, is_privmsg
from tests.e2e_support import LineClient, Predicate, connect_tls, is_command, reactor
from tests.redis_support import start_redis
from tests.services_support import postgres

#: Seconds a condition polled across the network may take.
SETTLE = 30.0

T = TypeVar("T")
#: A channel as one node shows it: NAMES (sorted, with prefixes), the
#: parameters of its MODE reply, its TOPIC.
View = tuple[list[str], list[tuple[str, ...]], list[str]]

#: Each step of a test goes to trial's log (_trial_temp/test.log), and each
#: node logs to node.log in its data dir: where a test stopped, and why.
log = Logger()


def is_notice(text: str) -> Predicate:
    def match(message: Message) -> bool:
        return message.command == "NOTICE" and text in message.params[-1]

    return match


async def eventually(
    check: Callable[[], Awaitable[T | None]], timeout: float = SETTLE
) -> T:
    """Poll the async *check* until it returns something true; return it."""
    waited = 0.0
    while True:
        result = await check()
        if result:
            return result
        if waited > timeout:
            raise AssertionError(f"timed out waiting; last: {result!r}")
        await deferLater(reactor, 0.2, lambda: None)
        waited += 0.2


async def answers(client: LineClient, *lines: tuple[str, ...]) -> list[Message]:
    """What *client* gets for *lines* (a PING after them ends the wait)."""
    start = len(client.received)
    for line in lines:
        client.send(*line)
    token = os.urandom(4).hex()
    await client.sync(token)
    return client.received[start:]


async def channel_view(client: LineClient, channel: str) -> View:
    """*channel* as *client*'s node shows it."""
    got = await answers(
        client, ("NAMES", channel), ("MODE", channel), ("TOPIC", channel)
    )
    names = sorted(
        name for m in got if m.command == "353" for name in m.params[-1].split()
    )
    modes = [m.params[2:] for m in got if m.command == "324"]
    topic = [m.params[-1] for m in got if m.command == "332"]
    return (names, modes, topic)


def metric(text: str, name: str) -> float:
    """The value of gauge *name* in a Prometheus page."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in the metrics")


class FaultCase(ClusterProcessCase):
    """Nodes a, b and c (loopback counted in the per-address limits)."""

    async def start_network(self) -> None:
        self.redis = start_redis(self)
        self.pg = postgres()
        self.database = self.pg.create_database()
        self.certs = Path(self.mktemp()).absolute()
        self.nodes: dict[str, subprocess.Popen[str]] = {}
        self.ports: dict[str, int] = {}
        for name in "abc":  # one after the other: the first makes the CA
            self.nodes[name], self.ports[name] = await self.node(name, strict=True)

    def assert_alive(self) -> None:
        for name, child in self.nodes.items():
            self.assertIsNone(child.poll(), f"node {name} exited")

    async def metrics(self, name: str) -> str:
        url = f"http://127.0.0.1:{self.metrics_ports[name]}/metrics"

        def read() -> str:
            with urllib.request.urlopen(url, timeout=5) as page:
                return str(page.read().decode())

        return await deferToThread(read)

    async def converged(
        self, clients: list[LineClient], channel: str, size: int
    ) -> View:
        """The view of *channel* once every client's node shows the same,
        with *size* members."""

        async def same() -> View | None:
            views = [await channel_view(client, channel) for client in clients]
            log.info("views of {channel}: {views!r}", channel=channel, views=views)
            if len(views[0][0]) == size and all(v == views[0] for v in views):
                return views[0]
            return None

        return await eventually(same)


class RedisFaultTests(FaultCase):
    async def test_redis_stops_and_comes_back_empty(self) -> None:
        await self.start_network()
        alice = await self.user(self.ports["a"], "alice")
        dan = await self.user(self.ports["a"], "dan")
        bob = await self.user(self.ports["b"], "bob")
        carol = await self.user(self.ports["c"], "carol")
        everyone = [alice, dan, bob, carol]
        log.info("step: everyone joins")
        for client in everyone:
            client.send("JOIN", "#net")
            await client.wait_for(is_command("366"))
        log.info("step: modes and topic")
        alice.send("MODE", "#net", "+slv", "10", "carol")
        alice.send("MODE", "#net", "+o", "bob")
        alice.send("TOPIC", "#net", "before the fault")
        before = await self.converged(everyone, "#net", 4)
        self.assertEqual(before[0], ["+carol", "@alice", "@bob", "dan"])

        log.info("step: Redis stops")
        self.redis.stop()
        for client in (alice, bob, carol):
            await client.wait_for(is_notice("lost its link"), timeout=SETTLE)
        # Users of one node keep talking, in private and in the channel.
        alice.send("PRIVMSG", "dan", "still here")
        await dan.wait_for(is_privmsg("still here"))
        alice.send("PRIVMSG", "#net", "local chat")
        await dan.wait_for(is_privmsg("local chat"))
        # What needs the network is refused, clearly.
        bob.send("NICK", "bobby")
        await bob.wait_for(is_command("437", "bob", "bobby"))
        late = await connect_tls(self.ports["c"], self.certs / "ca.pem")
        self.addCleanup(late.transport.loseConnection)
        late.send("NICK", "erin")
        late.send("USER", "erin", "0", "*", "Erin")
        await late.wait_for(is_command("437", "*", "erin"))
        carol.send("REGISTER", "*", "*", PASSWORD)
        fail = await carol.wait_for(is_command("FAIL", "REGISTER"))
        self.assertEqual(fail.params[1], "TEMPORARILY_UNAVAILABLE")
        self.assert_alive()

        log.info("step: Redis starts, empty")
        self.redis.start()  # empty: nothing was saved
        for client in (alice, bob, carol):
            await client.wait_for(is_notice("linked to the network again"))
        # Before any channel command: a node that starts now finds the
        # channel as it was (its home put it back) and joins it.
        log.info("step: a new node")
        _, port_d = await self.node("d", strict=True)
        erin = await self.user(port_d, "erin")
        erin.send("JOIN", "#net")
        await erin.wait_for(is_command("366"))
        everyone.append(erin)
        log.info("step: the channel converges again")
        after = await self.converged(everyone, "#net", 5)
        self.assertEqual(after[0], sorted([*before[0], "erin"]))
        self.assertEqual(after[1:], before[1:])
        # Nobody left, so nobody was seen leaving.
        for client in everyone:
            quits = [m.to_line() for m in client.received if m.command == "QUIT"]
            self.assertEqual(quits, [])
        log.info("step: nicks")
        # One holder per nick again, and none taken twice.
        self.assertEqual(self.redis.command("HLEN", "chat:nicks"), b":5")
        taker = await connect_tls(self.ports["b"], self.certs / "ca.pem")
        self.addCleanup(taker.transport.loseConnection)
        taker.send("NICK", "alice")
        await taker.wait_for(is_command("433", "*", "alice"))
        log.info("step: chat across nodes")
        # Chat across nodes again, and nick changes.
        bob.send("PRIVMSG", "#net", "across again")
        for client in (alice, dan, carol, erin):
            await client.wait_for(is_privmsg("across again"))
        carol.send("PRIVMSG", "alice", "just you")
        await alice.wait_for(is_privmsg("just you"))
        bob.send("NICK", "bobby")
        for client in (alice, carol, erin):
            await client.wait_for(
                lambda m: m.command == "NICK" and m.params == ("bobby",)
            )
        self.assert_alive()


class PostgresFaultTests(FaultCase):
    async def history(self, client: LineClient) -> list[str] | None:
        """The texts of #hist's CHATHISTORY on *client*'s node (None: an
        error)."""
        got = await answers(client, ("CHATHISTORY", "LATEST", "#hist", "*", "50"))
        if any(m.command == "FAIL" for m in got):
            return None
        return [
            m.params[-1] for m in got if m.command == "PRIVMSG" and "batch" in m.tags
        ]

    async def test_postgres_stops_while_the_cluster_runs(self) -> None:
        await self.start_network()
        self.addCleanup(self.pg.start)  # even if the test fails midway
        alice = await self.user(self.ports["a"], "alice")
        bob = await self.user(self.ports["b"], "bob")
        carol = await self.user(self.ports["c"], "carol")
        alice.send("REGISTER", "*", "*", PASSWORD)
        await alice.wait_for(is_command("REGISTER", "SUCCESS"))
        for client in (alice, bob, carol):
            client.send("JOIN", "#hist")
            await client.wait_for(is_command("366"))
        await self.converged([alice, bob, carol], "#hist", 3)

        log.info("step: PostgreSQL stops")
        self.pg.stop()
        # Logins and registrations: a clear temporary error.
        refused = await self.sasl(self.ports["b"], "alice")
        self.assertEqual(refused.command, "904")
        self.assertIn("unavailable", refused.params[-1])
        carol.send("REGISTER", "*", "*", PASSWORD)
        fail = await carol.wait_for(is_command("FAIL", "REGISTER"), timeout=SETTLE)
        self.assertEqual(fail.params[1:3], ("TEMPORARILY_UNAVAILABLE", "carol"))
        log.info("step: chat goes on")
        # Chat goes on across nodes.
        texts = [f"{who}-{n}" for n in range(3) for who in ("a", "b", "c")]
        for text in texts:
            {"a": alice, "b": bob, "c": carol}[text[0]].send("PRIVMSG", "#hist", text)
        for client in (alice, bob, carol):
            for text in texts:
                await client.wait_for(is_privmsg(text))
        order = [
            m.params[-1]
            for m in alice.received
            if m.command == "PRIVMSG" and m.params[0] == "#hist"
        ]

        log.info("step: metrics while away")

        # The writes wait in memory, and the metrics say so.
        async def buffered() -> list[float]:
            pages = [await self.metrics(name) for name in self.nodes]
            counts = [metric(page, "chat_history_buffered") for page in pages]
            log.info("history buffered on a, b, c: {counts}", counts=counts)
            return counts

        # #hist's home (node a, where it was made) stores its history.
        async def all_buffered() -> bool:
            return await buffered() == [len(texts), 0, 0]

        await eventually(all_buffered)
        self.assert_alive()

        log.info("step: PostgreSQL starts")
        self.pg.start()
        for client in (alice, bob, carol):

            async def complete(client: LineClient = client) -> bool:
                return await self.history(client) == order

            await eventually(complete)

        async def written() -> bool:
            return await buffered() == [0, 0, 0]

        await eventually(written)
        for name in self.nodes:
            page = await self.metrics(name)
            self.assertEqual(metric(page, "chat_history_dropped_total"), 0)
        accepted = await self.sasl(self.ports["c"], "alice")
        self.assertEqual(accepted.command, "903")
        self.assert_alive()
