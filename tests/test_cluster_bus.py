"""The cluster bus on Redis Streams with a real Redis: a reader whose
connection is cut goes on where it stopped; one that was away too long
knows it lost entries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import txredisapi
from twisted.trial.unittest import TestCase

from chat.cluster import parse_redis_url
from chat.cluster.bus import BACKLOG, READER_NAME, BacklogFullError, StreamBus
from chat.cluster.node import ClusterNode
from tests.redis_support import start_proxy, start_redis
from tests.test_cluster import Client, Network, TwoNodes, eventually, reactor

INBOX = "test:to:n"
ALL = "test:all"


class Owner:
    """Records what the bus tells it."""

    def __init__(self) -> None:
        self.ups = 0
        self.downs = 0
        self.losses = 0
        self.sends_losses = 0
        self.entries: list[tuple[str, str]] = []
        #: How many entries had come at each link_up.
        self.entries_at_up: list[int] = []
        #: Run after each batch is recorded.
        self.hook: Callable[[], None] = lambda: None

    def link_up(self) -> None:
        self.ups += 1
        self.entries_at_up.append(len(self.entries))

    def link_down(self) -> None:
        self.downs += 1

    def link_lost(self) -> None:
        self.losses += 1

    def events(self, entries: Sequence[tuple[str, str]]) -> None:
        self.entries.extend(entries)
        self.hook()

    def sends_lost(self) -> None:
        self.sends_losses += 1

    def texts(self, stream: str = INBOX) -> list[str]:
        return [text for name, text in self.entries if name == stream]


class BusTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.redis = start_redis(self)

    async def bus(
        self, length: int = 1000, commands_url: str = "", backlog: int = BACKLOG
    ) -> tuple[StreamBus, Owner]:
        """A started bus reading INBOX and ALL, once it is positioned; its
        command connection to *commands_url* (Redis itself by default)."""
        address = parse_redis_url(self.redis.url)
        to = parse_redis_url(commands_url or self.redis.url)
        self.commands: Any = txredisapi.lazyConnection(
            to.host, to.port, to.db, convertNumbers=False
        )
        self.addCleanup(self.commands.disconnect)
        owner = Owner()
        bus = StreamBus(
            owner,
            reactor,
            self.commands,
            address,
            "n",
            (ALL, INBOX),
            length,
            block=0.2,
            clock=reactor,
            backlog=backlog,
        )
        bus.start()
        self.addCleanup(bus.stop)
        await eventually(lambda: owner.ups == 1)
        return bus, owner

    def add(self, *texts: str, stream: str = INBOX) -> None:
        for text in texts:
            self.assertTrue(self.redis.command("XADD", stream, "*", "d", text))

    async def cut(self, bus: StreamBus, owner: Owner, how: tuple[str, ...]) -> None:
        """Cut the reader's connection with *how* (a CLIENT KILL filter)."""
        downs = owner.downs
        if how:
            self.redis.command("CLIENT", "KILL", *how)
        else:
            self.redis.kill_client(READER_NAME + "n")
        await eventually(lambda: owner.downs == downs + 1)
        self.assertFalse(bus.reading)

    async def test_a_first_start_reads_from_the_end(self) -> None:
        self.add("old", "older")
        _, owner = await self.bus()
        self.add("new")
        self.add("shared", stream=ALL)
        await eventually(lambda: len(owner.entries) == 2)
        self.assertEqual(owner.entries, [(INBOX, "new"), (ALL, "shared")])
        self.assertEqual(owner.losses, 0)

    async def test_published_with_the_bus_arrives(self) -> None:
        bus, owner = await self.bus()
        await bus.publish(INBOX, "one\ntwo")
        await eventually(lambda: owner.texts() == ["one\ntwo"])

    def xlen(self, stream: str = INBOX) -> int:
        return int(self.redis.command("XLEN", stream)[1:])

    async def paused_xadds(self, bus: StreamBus, count: int) -> list[Any]:
        """Pause Redis's writes and publish m0... to INBOX: *count* XADDs
        wait at Redis, sent and not run."""
        self.redis.command("CLIENT", "PAUSE", "20000", "WRITE")
        self.addCleanup(self.redis.command, "CLIENT", "UNPAUSE")
        adds = [bus.publish(INBOX, f"m{n}") for n in range(count)]
        await eventually(lambda: self.redis.blocked("xadd") == 1)
        return adds

    async def test_xadds_in_flight_when_the_connection_drops_are_sent_again(
        self,
    ) -> None:
        bus, owner = await self.bus()
        ident = str(await self.commands.execute_command("CLIENT", "ID"))
        adds = await self.paused_xadds(bus, 10)
        self.assertEqual(bus.unacked, 10)
        # Killed while Redis holds its XADDs unrun: they are gone with it.
        self.assertEqual(self.redis.command("CLIENT", "KILL", "ID", ident), b":1")
        # Published while the connection is down: they wait behind.
        adds += [bus.publish(INBOX, f"m{n}") for n in range(10, 15)]
        self.redis.command("CLIENT", "UNPAUSE")
        for adding in adds:
            await adding
        self.assertEqual(bus.unacked, 0)
        await eventually(lambda: len(owner.texts()) == 15)
        self.assertEqual(owner.texts(), [f"m{n}" for n in range(15)])
        self.assertEqual(self.xlen(), 15, "each added once")

    async def test_an_xadd_run_whose_answer_was_lost_is_applied_once(self) -> None:
        proxy = start_proxy(self, self.redis)
        bus, owner = await self.bus(commands_url=proxy.url)
        await bus.publish(INBOX, "a0")
        proxy.holding = True
        adds = [bus.publish(INBOX, f"a{n}") for n in (1, 2)]
        # Redis ran them; their answers are swallowed, then the link is cut.
        await eventually(lambda: self.xlen() == 3)
        await eventually(lambda: owner.texts() == ["a0", "a1", "a2"])
        proxy.holding = False
        proxy.cut()
        for adding in adds:
            await adding
        self.assertEqual(self.xlen(), 5, "sent again, so added twice")
        await bus.publish(INBOX, "a3")
        await eventually(lambda: owner.texts()[-1:] == ["a3"])
        self.assertEqual(owner.texts(), ["a0", "a1", "a2", "a3"])
        # The copies were read past, not applied: a reader cut goes on.
        await self.cut(bus, owner, ())
        await eventually(lambda: owner.ups == 2)
        await bus.publish(INBOX, "a4")
        await eventually(lambda: owner.texts()[-1:] == ["a4"])
        self.assertEqual(owner.texts(), ["a0", "a1", "a2", "a3", "a4"])

    async def test_a_full_backlog_loses_what_comes_after_and_says_so(self) -> None:
        bus, owner = await self.bus(backlog=3)
        adds = await self.paused_xadds(bus, 3)
        late = [bus.publish(INBOX, text) for text in ("x", "y")]
        for adding in late:
            await self.assertFailure(adding, BacklogFullError)
        self.assertEqual(owner.sends_losses, 1, "told once")
        self.redis.command("CLIENT", "UNPAUSE")
        for adding in adds:
            await adding
        await bus.publish(INBOX, "after")
        await eventually(lambda: owner.texts()[-1:] == ["after"])
        self.assertEqual(owner.texts(), ["m0", "m1", "m2", "after"])
        # Empty again: a new overflow is told again.
        adds = await self.paused_xadds(bus, 3)
        await self.assertFailure(bus.publish(INBOX, "z"), BacklogFullError)
        self.assertEqual(owner.sends_losses, 2)
        self.redis.command("CLIENT", "UNPAUSE")
        for adding in adds:
            await adding

    async def test_unnumbered_and_other_senders_entries_are_all_applied(
        self,
    ) -> None:
        _, owner = await self.bus()
        for mark in ("p/1", "q/1", "p/2", "p/1", "q/1", "q/2", "bad"):
            self.redis.command("XADD", INBOX, "*", "d", mark, "s", mark)
        self.add("plain")
        await eventually(lambda: owner.texts()[-1:] == ["plain"])
        self.assertEqual(owner.texts(), ["p/1", "q/1", "p/2", "q/2", "bad", "plain"])

    async def check_cut(self, how: tuple[str, ...]) -> None:
        bus, owner = await self.bus()
        self.add("m0", "m1")
        await eventually(lambda: owner.texts() == ["m0", "m1"])
        await self.cut(bus, owner, how)
        # Added while nobody reads: the reader comes back after a delay.
        self.add(*(f"m{n}" for n in range(2, 40)))
        self.add("s0", stream=ALL)
        self.assertFalse(bus.reading, "the reader came back too soon to test")
        await eventually(lambda: owner.ups == 2 and len(owner.entries) == 41)
        self.assertEqual(owner.texts(), [f"m{n}" for n in range(40)])
        self.assertEqual(owner.texts(ALL), ["s0"])
        self.assertEqual(owner.entries_at_up, [0, 41], "up once caught up")
        self.add("after")
        await eventually(lambda: owner.texts()[-1:] == ["after"])
        self.assertEqual(len(owner.entries), 42, "nothing twice")
        self.assertEqual(owner.losses, 0)

    async def test_a_reader_killed_by_id_goes_on_where_it_stopped(self) -> None:
        await self.check_cut(())

    async def test_a_reader_killed_with_every_client_goes_on(self) -> None:
        await self.check_cut(("TYPE", "normal"))

    async def test_a_stream_trimmed_past_the_last_entry_read_is_lost(self) -> None:
        # Small macro nodes, so that MAXLEN ~ 4 trims close to 4.
        self.redis.command("CONFIG", "SET", "stream-node-max-entries", "2")
        bus, owner = await self.bus(length=4)
        await bus.publish(INBOX, "seen")
        await eventually(lambda: owner.texts() == ["seen"])
        await self.cut(bus, owner, ())
        for n in range(20):
            await bus.publish(INBOX, f"gone{n}")
        self.assertLess(int(self.redis.command("XLEN", INBOX)[1:]), 8)
        await eventually(lambda: owner.ups == 2)
        self.assertEqual(owner.losses, 1)
        # Read again from the end: the remnants of the gap are not read.
        await bus.publish(INBOX, "after")
        await eventually(lambda: owner.texts()[-1:] == ["after"])
        self.assertEqual(owner.texts(), ["seen", "after"])

    async def test_a_stream_younger_than_the_last_entry_read_is_lost(self) -> None:
        bus, owner = await self.bus()
        self.add("seen", "seen too")
        await eventually(lambda: len(owner.texts()) == 2)
        await self.cut(bus, owner, ())
        # As after Redis restarted without its data: the stream is new.
        self.redis.command("DEL", INBOX)
        self.add("new")
        await eventually(lambda: owner.ups == 2)
        self.assertEqual(owner.losses, 1)
        self.add("after")
        await eventually(lambda: owner.texts()[-1:] == ["after"])
        self.assertEqual(owner.texts(), ["seen", "seen too", "after"])

    async def test_a_stream_that_is_gone_is_read_from_its_beginning(self) -> None:
        bus, owner = await self.bus()
        self.add("seen")
        await eventually(lambda: owner.texts() == ["seen"])
        await self.cut(bus, owner, ())
        self.redis.command("DEL", INBOX)
        await eventually(lambda: owner.ups == 2)
        self.add("new", "newer")
        await eventually(lambda: owner.texts() == ["seen", "new", "newer"])
        self.assertEqual(owner.losses, 0)

    async def test_trimming_what_was_read_is_not_a_loss(self) -> None:
        self.redis.command("CONFIG", "SET", "stream-node-max-entries", "2")
        bus, owner = await self.bus(length=4)
        for n in range(20):
            await bus.publish(INBOX, f"m{n}")
            await eventually(lambda n=n: len(owner.texts()) == n + 1)
        self.assertLess(int(self.redis.command("XLEN", INBOX)[1:]), 8)
        await self.cut(bus, owner, ())
        await bus.publish(INBOX, "after")
        await eventually(lambda: owner.texts()[-1:] == ["after"])
        self.assertEqual(owner.texts(), [*(f"m{n}" for n in range(20)), "after"])
        self.assertEqual(owner.losses, 0)

    async def test_a_connected_reader_that_falls_behind_knows_it(self) -> None:
        self.redis.command("CONFIG", "SET", "stream-node-max-entries", "2")
        _, owner = await self.bus(length=4)
        flood = [f"flood{n}" for n in range(20)]

        def slow() -> None:
            # While the reader handles its first entry, 20 more come and
            # all but the last few are trimmed before it reads again.
            if len(owner.entries) == 1:
                for text in flood:
                    self.redis.command("XADD", INBOX, "MAXLEN", "4", "*", "d", text)

        owner.hook = slow
        self.add("first")
        await eventually(lambda: owner.losses == 1)
        self.add("after")
        await eventually(lambda: owner.texts()[-1:] == ["after"])
        self.assertEqual(owner.texts(), ["first", "after"])
        self.assertEqual(owner.ups, 1, "still connected")


def texts(client: Client, target: str) -> list[str]:
    """The texts of the PRIVMSGs to *target* that *client* saw, in order."""
    return [
        line.rsplit(" :", 1)[-1]
        for line in client.read()
        if f" PRIVMSG {target} :" in line
    ]


class NodeCutTests(TwoNodes):
    """Node b's bus reader is cut while node a sends it events."""

    async def cut_b(self) -> ClusterNode:
        node_b = self.network.nodes["b"]
        assert node_b.bus is not None
        self.redis.kill_client(READER_NAME + "b")
        await eventually(lambda: not node_b.linked)
        return node_b

    async def test_what_a_cut_node_was_sent_arrives_after_in_order_once(
        self,
    ) -> None:
        for client in (self.alice, self.bob):
            client.send("JOIN #team")
            await eventually(lambda c=client: c.saw(" 366 "))
        await eventually(
            lambda: any(m.nick == "bob" for m in self.a.channels["#team"].members)
        )
        node_b = await self.cut_b()
        self.assertTrue(self.bob.saw("lost its link"))
        sent = [f"m{n}" for n in range(30)]
        inbox = int(self.redis.command("XLEN", "chat:to:b")[1:])
        for text in sent:
            target = "bob" if int(text[1:]) % 2 else "#team"
            self.alice.send(f"PRIVMSG {target} :{text}")
        # All published while b reads nothing (it comes back after ~1 s).
        # One entry each (a private line, or a turn's relay).
        await eventually(
            lambda: int(self.redis.command("XLEN", "chat:to:b")[1:]) == inbox + 30
        )
        assert node_b.bus is not None
        self.assertFalse(node_b.bus.reading, "b came back too soon to test")
        await eventually(lambda: self.bob.saw("linked to the network again"))
        odd = [text for text in sent if int(text[1:]) % 2]
        even = [text for text in sent if not int(text[1:]) % 2]
        await eventually(lambda: len(texts(self.bob, "bob")) == len(odd))
        await eventually(lambda: len(texts(self.bob, "#team")) == len(even))
        self.alice.send("PRIVMSG bob :after")
        await eventually(lambda: texts(self.bob, "bob")[-1:] == ["after"])
        self.assertEqual(texts(self.bob, "bob"), [*odd, "after"])
        self.assertEqual(texts(self.bob, "#team"), even)
        self.assertFalse(self.alice.saw(" QUIT "), "no split for a reader cut")

    async def test_sent_while_redis_drops_every_client_arrives_in_order_once(
        self,
    ) -> None:
        node_a, node_b = self.network.nodes["a"], self.network.nodes["b"]
        self.redis.command("CLIENT", "KILL", "TYPE", "normal")
        await eventually(lambda: not node_a.linked and not node_b.linked)
        # Node a's XADDs wait for its command connection to come back.
        sent = [f"m{n}" for n in range(10)]
        for text in sent:
            self.alice.send(f"PRIVMSG bob :{text}")
        await eventually(lambda: node_a.linked and node_b.linked, timeout=10)
        await eventually(lambda: len(texts(self.bob, "bob")) >= len(sent))
        self.alice.send("PRIVMSG bob :after")
        await eventually(lambda: texts(self.bob, "bob")[-1:] == ["after"])
        self.assertEqual(texts(self.bob, "bob"), [*sent, "after"])
        self.assertFalse(self.bob.saw("may have been lost"))

    async def test_xadds_cut_in_flight_arrive_in_order_once(self) -> None:
        self.redis.command("CLIENT", "PAUSE", "20000", "WRITE")
        self.addCleanup(self.redis.command, "CLIENT", "UNPAUSE")
        sent = [f"m{n}" for n in range(10)]
        for text in sent:
            self.alice.send(f"PRIVMSG bob :{text}")
        await eventually(lambda: self.redis.blocked("xadd") == 1)
        # Node a's command connection dies with its XADDs sent, not run.
        self.assertEqual(self.redis.kill_blocked("xadd"), 1)
        self.alice.send("PRIVMSG bob :while down")
        self.redis.command("CLIENT", "UNPAUSE")
        await eventually(lambda: texts(self.bob, "bob")[-1:] == ["while down"])
        self.alice.send("PRIVMSG bob :after")
        await eventually(lambda: texts(self.bob, "bob")[-1:] == ["after"])
        self.assertEqual(texts(self.bob, "bob"), [*sent, "while down", "after"])
        self.assertFalse(self.bob.saw("may have been lost"))
        self.assertTrue(self.network.nodes["b"].linked)

    async def test_a_full_backlog_tells_the_senders_users_and_resyncs(
        self,
    ) -> None:
        node_a = self.network.nodes["a"]
        assert node_a.bus is not None
        node_a.bus.backlog = 1
        self.redis.command("CLIENT", "PAUSE", "20000", "WRITE")
        self.addCleanup(self.redis.command, "CLIENT", "UNPAUSE")
        self.alice.send("PRIVMSG bob :kept")
        await eventually(lambda: self.redis.blocked("xadd") == 1)
        self.alice.send("PRIVMSG bob :dropped")
        await eventually(lambda: self.alice.saw("may not have reached"))
        self.assertFalse(node_a.linked, "re-syncing")
        self.redis.command("CLIENT", "UNPAUSE")
        await eventually(lambda: node_a.linked)
        self.alice.send("PRIVMSG bob :after")
        await eventually(lambda: texts(self.bob, "bob")[-1:] == ["after"])
        self.assertEqual(texts(self.bob, "bob"), ["kept", "after"])

    async def test_a_paused_redis_delays_and_loses_nothing(self) -> None:
        self.redis.command("CLIENT", "PAUSE", "1000")
        sent = [f"m{n}" for n in range(10)]
        for text in sent:
            self.alice.send(f"PRIVMSG bob :{text}")
        await eventually(lambda: len(texts(self.bob, "bob")) >= len(sent))
        self.assertEqual(texts(self.bob, "bob"), sent)
        self.assertTrue(self.network.nodes["b"].linked)


class TrimTests(TestCase):
    timeout = 30

    async def test_a_node_whose_events_were_trimmed_resyncs(self) -> None:
        # Streams keep about 4 entries (small Redis macro nodes).
        redis = start_redis(self)
        redis.command("CONFIG", "SET", "stream-node-max-entries", "2")
        network = Network(self, redis)
        a = await network.node("a", stream_length=4)
        c = await network.node("c", stream_length=4)
        alice = await network.user(a, "alice")
        ana = await network.user(c, "ana")
        await eventually(lambda: a.find_user("ana") is not None)
        node_c = network.nodes["c"]
        redis.kill_client(READER_NAME + "c")
        await eventually(lambda: not node_c.linked)
        # Meanwhile, many more events than the streams keep.
        carol = await network.user(a, "carol")
        dave = await network.user(a, "dave")
        dave.send("QUIT :bye")
        for n in range(10):
            alice.send(f"NICK alice{n}")
            carol.send(f"PRIVMSG ana :lost {n}")
        await eventually(lambda: a.find_user("alice9") is not None)
        assert node_c.bus is not None
        self.assertFalse(node_c.bus.reading, "c came back too soon to test")
        await eventually(lambda: ana.saw("messages sent to you meanwhile"))
        await eventually(lambda: node_c.linked)
        await eventually(lambda: c.find_user("alice9") is not None)
        self.assertIsNotNone(c.find_user("carol"))
        self.assertIsNone(c.find_user("dave"))
        self.assertEqual(
            {nick for nick in ("alice", *(f"alice{n}" for n in range(9)))}
            & {session.nick for session in node_c.remote.get("a", {}).values()},
            set(),
        )
        got = texts(ana, "ana")
        self.assertEqual(got, sorted(set(got), key=got.index), "nothing twice")
        carol.send("PRIVMSG ana :after")
        await eventually(lambda: texts(ana, "ana")[-1:] == ["after"])
        self.assertEqual(texts(ana, "ana").count("after"), 1)
