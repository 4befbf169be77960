"""Cluster mode with a real Redis: nodes in this process, clients on each.

Each node is a whole `ChatServer` with its `ClusterNode`; clients are
`FakeClient`s on the real reactor, so what crosses between nodes really
goes through Redis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from twisted.internet import reactor as _reactor
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from chat.cluster import parse_redis_url
from chat.cluster.node import STREAM_LENGTH, ClusterNode
from chat.cluster.remote import own_source
from chat.config import ServerConfig
from chat.message import Message
from chat.metrics import ServerCollector
from chat.router import Audience
from chat.server import ChatServer
from chat.traffic import Traffic
from tests.redis_support import RedisServer, start_redis
from tests.support import FakeClient

reactor = cast(IReactorTime, _reactor)
LEASE = 1.0


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until *check* holds, polling the real reactor."""
    waited = 0.0
    while not check():
        if waited > timeout:
            raise AssertionError("timed out waiting")
        await deferLater(reactor, 0.02, lambda: None)
        waited += 0.02


#: Every client made, closed at the end of its test (timers included).
CLIENTS: list[FakeClient] = []


def close_clients() -> None:
    while CLIENTS:
        CLIENTS.pop().conn.connectionLost()


class Client(FakeClient):
    """A fake client keeping everything it was sent, to search it later."""

    def __init__(self, server: ChatServer) -> None:
        super().__init__(server)
        self.seen: list[str] = []
        CLIENTS.append(self)

    def read(self) -> list[str]:
        self.seen.extend(self.lines())
        return self.seen

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.read())


class Network:
    """Nodes of one cluster on *redis*, started and stopped with the test."""

    def __init__(self, case: TestCase, redis: RedisServer) -> None:
        self.case = case
        self.redis = redis
        self.nodes: dict[str, ClusterNode] = {}
        case.addCleanup(close_clients)

    def make_server(self, name: str) -> ChatServer:
        """The server of node *name*, before it joins the cluster."""
        config = ServerConfig(server_name=f"{name}.test", network="TestNet")
        return ChatServer(config, reactor)

    async def node(self, name: str, stream_length: int = STREAM_LENGTH) -> ChatServer:
        server = self.make_server(name)
        address = parse_redis_url(self.redis.url)
        node = ClusterNode(server, address, name, LEASE, stream_length)
        node.startService()
        self.case.addCleanup(self._stop, node)
        self.nodes[name] = node
        await eventually(lambda: node.linked)
        return server

    async def _stop(self, node: ClusterNode) -> None:
        if node.running:
            await node.stopService()

    async def user(self, server: ChatServer, nick: str) -> Client:
        client = Client(server)
        client.send(f"NICK {nick}", f"USER {nick} 0 * :{nick} Real")
        await eventually(lambda: client.conn.registered)
        client.read()
        return client


class TwoNodes(TestCase):
    """alice on node a, bob on node b, each known to the other node."""

    timeout = 30

    def make_network(self) -> Network:
        """The cluster the nodes join."""
        return Network(self, self.redis)

    async def setUp(self) -> None:
        self.redis = start_redis(self)
        self.network = self.make_network()
        self.a = await self.network.node("a")
        self.b = await self.network.node("b")
        self.alice = await self.network.user(self.a, "alice")
        self.bob = await self.network.user(self.b, "bob")
        await eventually(lambda: self.a.find_user("bob") is not None)
        await eventually(lambda: self.b.find_user("alice") is not None)


class TwoNodeTests(TwoNodes):
    async def test_users_see_each_other(self) -> None:
        self.alice.send("WHOIS bob", "ISON bob carol", "USERHOST bob")
        lines = self.alice.read()
        self.assertTrue(any(" 311 alice bob ~bob " in line for line in lines), lines)
        self.assertTrue(any(" 312 alice bob b " in line for line in lines), lines)
        self.assertTrue(any(" 303 alice " in line for line in lines), lines)
        self.alice.send("LUSERS")
        self.assertTrue(self.alice.saw("Current global users 2"))

    async def test_lusers_counts_nodes_and_this_node_s_own_clients(self) -> None:
        await self.network.user(self.a, "carol")
        await eventually(lambda: self.b.find_user("carol") is not None)
        self.alice.send("LUSERS")
        self.bob.send("LUSERS")
        for client, nick, local in ((self.alice, "alice", 2), (self.bob, "bob", 1)):
            self.assertTrue(
                client.saw(
                    f" 251 {nick} :There are 3 users and 0 invisible on 2 servers"
                )
            )
            self.assertTrue(
                client.saw(f" 255 {nick} :I have {local} clients and 1 servers")
            )
            current = f"Current local users {local}, max {local}"
            self.assertTrue(client.saw(f" 265 {nick} {local} {local} :{current}"))
            self.assertTrue(
                client.saw(f" 266 {nick} 3 3 :Current global users 3, max 3")
            )

    async def test_lusers_stops_counting_a_node_that_left(self) -> None:
        await self.network.nodes["b"].stopService()
        await eventually(lambda: self.a.find_user("bob") is None)
        self.alice.send("LUSERS")
        self.assertTrue(
            self.alice.saw(" 251 alice :There are 1 users and 0 invisible on 1 servers")
        )
        self.assertTrue(self.alice.saw(" 255 alice :I have 1 clients and 0 servers"))

    async def test_whowas_names_the_node_the_user_was_on(self) -> None:
        self.bob.send("QUIT :bye")
        await eventually(lambda: self.a.find_user("bob") is None)
        self.alice.send("WHOWAS bob")
        await eventually(lambda: self.alice.saw(" 369 alice bob "))
        self.assertTrue(self.alice.saw(" 312 alice bob b "), self.alice.read())
        # From node a's memory too, when Redis cannot be asked.
        self.redis.stop()
        await eventually(lambda: not self.network.nodes["a"].linked)
        self.alice.seen.clear()
        self.alice.send("WHOWAS bob")
        await eventually(lambda: self.alice.saw(" 369 alice bob "))
        self.assertTrue(self.alice.saw(" 312 alice bob b "), self.alice.read())
        self.assertFalse(self.alice.saw(" 312 alice bob a "))

    async def test_user_gauges_count_this_node_s_users(self) -> None:
        await self.network.user(self.a, "carol")
        await eventually(lambda: self.b.find_user("carol") is not None)
        values = {}
        for name, server in (("a", self.a), ("b", self.b)):
            collector = ServerCollector(server, Traffic(), lambda: 0)
            values[name] = {
                sample.name: sample.value
                for family in collector.collect()
                for sample in family.samples
            }
        self.assertEqual(values["a"]["chat_registered_users"], 2)
        self.assertEqual(values["b"]["chat_registered_users"], 1)
        self.assertEqual(values["a"]["chat_network_users"], 3)
        self.assertEqual(values["b"]["chat_network_users"], 3)
        self.assertEqual(values["a"]["chat_connections"], 2)
        self.assertEqual(values["b"]["chat_connections"], 1)

    async def test_lusers_counts_only_this_node_s_connections_as_unknown(
        self,
    ) -> None:
        Client(self.a).send("NICK carol")  # connected, not registered yet
        self.alice.send("LUSERS")
        self.assertTrue(self.alice.saw(" 253 alice 1 :unknown connection(s)"))
        self.bob.send("LUSERS")
        self.assertTrue(self.bob.saw(" 253 bob 0 :unknown connection(s)"))

    async def test_private_messages_cross_nodes_both_ways(self) -> None:
        self.alice.send("PRIVMSG bob :hello from a")
        await eventually(lambda: self.bob.saw("PRIVMSG bob :hello from a"))
        self.bob.send("NOTICE alice :hello from b")
        await eventually(lambda: self.alice.saw("NOTICE alice :hello from b"))

    async def test_a_message_reaches_a_user_whose_announcement_is_late(
        self,
    ) -> None:
        # As if bob's "user" event had not reached node a yet: Redis knows
        # him (his nick and identity), node a does not.
        self.network.nodes["a"]._drop("b", "bob", "not announced yet", "none")
        self.assertIsNone(self.a.find_user("bob"))
        self.alice.send("PRIVMSG bob :are you there", "NOTICE bob :hello")
        await eventually(lambda: self.bob.saw("NOTICE bob :hello"))
        self.assertTrue(self.bob.saw("PRIVMSG bob :are you there"))
        self.assertFalse(self.alice.saw(" 401 "))
        self.alice.send("PRIVMSG nobody :hi")
        await eventually(lambda: self.alice.saw(" 401 alice nobody "))

    async def test_a_nick_just_left_on_another_node_can_be_taken(self) -> None:
        # As if bob had quit on node b and the news had not reached node a
        # yet: Redis has freed his nick, node a still has him.
        self.assertEqual(self.redis.command("HDEL", "chat:nicks", "bob"), b":1")
        self.assertIsNotNone(self.a.find_user("bob"))
        newcomer = Client(self.a)
        newcomer.send("NICK bob", "USER b 0 * :B")
        await eventually(lambda: newcomer.conn.registered)
        self.assertIs(self.a.find_user("bob"), newcomer.conn)
        # A user of another node who has not left keeps the nick.
        await self.network.user(self.b, "dave")
        await eventually(lambda: self.a.find_user("dave") is not None)
        carol = await self.network.user(self.a, "carol")
        carol.send("NICK dave")
        await eventually(lambda: carol.saw(" 433 carol dave "))
        self.assertIsNotNone(self.a.find_user("dave"))

    async def test_a_nick_held_on_another_node_is_in_use(self) -> None:
        carol = await self.network.user(self.a, "carol")
        carol.send("NICK bob")
        await eventually(lambda: carol.saw(" 433 carol bob "))
        newcomer = Client(self.a)
        newcomer.send("NICK Bob", "USER x 0 * :X")
        await eventually(lambda: newcomer.saw(" 433 * Bob "))
        self.assertFalse(newcomer.conn.registered)

    async def test_racing_for_one_nick_on_two_nodes_has_one_winner(self) -> None:
        first, second = Client(self.a), Client(self.b)
        first.send("NICK dave", "USER d 0 * :D")
        second.send("NICK dave", "USER d 0 * :D")
        await eventually(
            lambda: (
                first.conn.registered + second.conn.registered == 1
                and (first.saw(" 433 ") or second.saw(" 433 "))
            )
        )
        loser = second if first.conn.registered else first
        self.assertTrue(loser.saw(" 433 * dave "))

    async def test_a_nick_change_is_seen_and_frees_the_old_nick(self) -> None:
        self.bob.send("NICK robert")
        await eventually(lambda: self.a.find_user("robert") is not None)
        self.assertIsNone(self.a.find_user("bob"))
        carol = await self.network.user(self.a, "bob")
        self.assertTrue(carol.conn.registered)

    async def test_quit_frees_the_nick_everywhere(self) -> None:
        self.bob.send("QUIT :bye")
        await eventually(lambda: self.a.find_user("bob") is None)
        again = await self.network.user(self.a, "bob")
        self.assertTrue(again.conn.registered)

    async def test_kill_acts_on_the_other_node(self) -> None:
        self.alice.conn.modes.add("o")
        self.alice.send("KILL bob :enough")
        await eventually(lambda: self.bob.disconnected)
        self.assertTrue(self.bob.saw("enough"))
        await eventually(lambda: self.a.find_user("bob") is None)

    async def test_away_and_monitor_follow_the_user(self) -> None:
        self.alice.send("MONITOR + bob")
        self.bob.send("AWAY :lunch")
        await eventually(lambda: self.a.find_user("bob").away == "lunch")  # type: ignore[union-attr]
        self.alice.send("PRIVMSG bob :there?")
        self.assertTrue(self.alice.saw(" 301 alice bob "))
        self.bob.send("QUIT")
        await eventually(lambda: self.alice.saw(" 731 alice "))


class OwnSourceTests(TestCase):
    """`own_source`, which the e2e test above runs over two nodes."""

    def test_only_lines_from_the_other_server_change(self) -> None:
        data = (
            ":a.test 324 bob #team +nt\r\n"
            "@label=x;time=1 :a.test 482 bob #team :not an operator\r\n"
            ":alice!~alice@h PRIVMSG #team ::a.test 001 x\r\n"
            "@label=y :a.testing 001 bob :another server\r\n"
        )
        self.assertEqual(
            own_source(data, "a.test", "b.test"),
            ":b.test 324 bob #team +nt\r\n"
            "@label=x;time=1 :b.test 482 bob #team :not an operator\r\n"
            ":alice!~alice@h PRIVMSG #team ::a.test 001 x\r\n"
            "@label=y :a.testing 001 bob :another server\r\n",
        )

    def test_lines_pass_as_they_are_between_servers_of_one_name(self) -> None:
        data = ":a.test 324 bob #team +nt\r\n"
        self.assertIs(own_source(data, "a.test", "a.test"), data)
        self.assertIs(own_source(data, "", "b.test"), data)


class FailureTests(TestCase):
    timeout = 30

    async def test_a_dead_node_s_users_go_after_the_lease(self) -> None:
        redis = start_redis(self)
        network = Network(self, redis)
        a = await network.node("a")
        b = await network.node("b")
        alice = await network.user(a, "alice")
        await network.user(b, "bob")
        alice.send("MONITOR + bob")
        await eventually(lambda: a.find_user("bob") is not None)
        # Node b dies without a word: its links close, its lease runs out.
        node_b = network.nodes["b"]
        node_b._tick.stop()
        node_b.linked = False
        await node_b._disconnect()
        await eventually(lambda: a.find_user("bob") is None, timeout=LEASE * 4)
        self.assertTrue(alice.saw(" 731 alice "))
        taken = await network.user(a, "bob")
        self.assertTrue(taken.conn.registered)

    async def test_redis_away_then_back(self) -> None:
        redis = start_redis(self)
        network = Network(self, redis)
        a = await network.node("a")
        b = await network.node("b")
        alice = await network.user(a, "alice")
        carol = await network.user(a, "carol")
        await network.user(b, "bob")
        await eventually(lambda: a.find_user("bob") is not None)
        redis.stop()
        await eventually(lambda: not network.nodes["a"].linked)
        self.assertTrue(alice.saw("lost its link"))
        # Local chat goes on; a new nick cannot be checked, so it waits.
        alice.send("PRIVMSG carol :still here")
        self.assertTrue(carol.saw("PRIVMSG carol :still here"))
        newcomer = Client(a)
        newcomer.send("NICK erin", "USER e 0 * :E")
        await eventually(lambda: newcomer.saw(" 437 * erin "))
        self.assertFalse(newcomer.conn.registered)
        redis.start()
        await eventually(lambda: network.nodes["a"].linked, timeout=20)
        await eventually(lambda: network.nodes["b"].linked, timeout=20)
        self.assertTrue(alice.saw("linked to the network again"))
        await eventually(lambda: a.find_user("bob") is not None)
        await eventually(lambda: b.find_user("alice") is not None)
        clash = Client(b)
        clash.send("NICK alice", "USER x 0 * :X")
        await eventually(lambda: clash.saw(" 433 * alice "))


def privmsgs(client: Client) -> list[str]:
    """The texts of the PRIVMSGs to #team that *client* saw, in order."""
    return [
        line.rsplit(" ", 1)[-1].removeprefix(":")
        for line in client.read()
        if " PRIVMSG #team " in line
    ]


class ChannelTests(TwoNodes):
    async def setUp(self) -> None:
        await super().setUp()
        self.alice.send("JOIN #team")
        await eventually(lambda: self.alice.saw(" 366 alice #team "))
        self.bob.send("JOIN #team")
        await eventually(lambda: self.bob.saw(" 366 bob #team "))
        await eventually(lambda: self.alice.saw(":bob!~bob@127.0.0.1 JOIN #team"))

    def names(self, server: ChatServer) -> dict[str, str]:
        channel = server.channels["#team"]
        return {member.nick: modes for member, modes in channel.members.items()}

    async def test_members_of_two_nodes_share_one_channel(self) -> None:
        self.assertTrue(
            self.bob.saw(" 353 bob = #team :@alice bob")
            or self.bob.saw(" 353 bob = #team :bob @alice")
        )
        await eventually(lambda: self.names(self.b) == {"alice": "o", "bob": ""})
        self.assertEqual(self.names(self.a), {"alice": "o", "bob": ""})
        self.alice.send("PRIVMSG #team :from-a")
        await eventually(lambda: privmsgs(self.bob) == ["from-a"])
        self.bob.send("PRIVMSG #team :from-b")
        await eventually(lambda: privmsgs(self.alice) == ["from-b"])

    async def test_a_message_goes_to_each_other_node_once(self) -> None:
        others = [await self.network.user(self.b, nick) for nick in ("c1", "c2", "c3")]
        for client in others:
            client.send("JOIN #team")
            await eventually(lambda c=client: c.saw("366"))
        await eventually(lambda: len(self.names(self.a)) == 5)
        xadds = self.redis.calls("XADD")
        inbox = self.redis.command("XLEN", "chat:to:b")
        self.alice.send("PRIVMSG #team :to all four")
        for client in [self.bob, *others]:
            await eventually(lambda c=client: c.saw("PRIVMSG #team :to all four"))
        self.assertEqual(self.redis.calls("XADD"), xadds + 1, "one XADD for four")
        self.assertEqual(
            self.redis.command("XLEN", "chat:to:b"), b":%d" % (int(inbox[1:]) + 1)
        )

    async def test_every_member_sees_one_order(self) -> None:
        for client in (self.alice, self.bob):
            client.send("CAP REQ echo-message")
        await eventually(lambda: self.bob.saw(" ACK "))
        for number in range(20):
            self.alice.send(f"PRIVMSG #team a{number}")
            self.bob.send(f"PRIVMSG #team b{number}")
        await eventually(lambda: len(privmsgs(self.alice)) == 40)
        await eventually(lambda: len(privmsgs(self.bob)) == 40)
        self.assertEqual(privmsgs(self.alice), privmsgs(self.bob))
        # Each sender's own messages keep their order.
        mine = [t for t in privmsgs(self.alice) if t.startswith("b")]
        self.assertEqual(mine, [f"b{n}" for n in range(20)])

    async def test_lines_to_a_remote_user_keep_their_order_in_a_turn(self) -> None:
        # At the home, a relay, a line to bob alone (an echo) and another
        # relay in one turn reach bob's node in that order.
        router, channel = self.a.router, self.a.channels["#team"]
        session = self.a.find_user("bob")
        assert session is not None
        alice = self.alice.conn

        def say(text: str) -> None:
            relay = self.a.relay(Message("PRIVMSG", ("#team", text), alice.hostmask))
            router.publish(relay, Audience.channel(channel))

        started = router.begin_turn()
        say("one")
        session.send(Message("PRIVMSG", ("#team", "two"), alice.hostmask))
        say("three")
        if started:
            router.end_turn()
        await eventually(lambda: len(privmsgs(self.bob)) == 3)
        self.assertEqual(privmsgs(self.bob), ["one", "two", "three"])

    async def test_lines_after_a_routed_command_wait_for_its_answer(self) -> None:
        # INVITE to a channel this node does not know asks Redis for its
        # home; the TOPIC after it must wait, not overtake it (and then
        # wait for it forever, while it waits for TOPIC).
        self.alice.send("INVITE bob #nothere", "TOPIC #team :hello", "PING x")
        await eventually(lambda: self.alice.saw("PONG"))
        lines = self.alice.read()
        order = [
            next(i for i, line in enumerate(lines) if text in line)
            for text in (" 403 alice #nothere ", " TOPIC #team :hello", "PONG")
        ]
        self.assertEqual(order, sorted(order), lines)

    async def test_replies_of_a_routed_command_come_before_the_next(self) -> None:
        self.alice.send("MODE #team +b bob!*@*")
        await eventually(lambda: self.bob.saw(" MODE #team +b bob!*@*"))
        self.bob.send("PRIVMSG #team :banned", "PING x", "NICK robert")
        await eventually(lambda: self.bob.saw(" NICK robert"))
        lines = self.bob.read()
        self.assertTrue(any(" 404 bob #team " in line for line in lines), lines)
        error = next(i for i, line in enumerate(lines) if " 404 bob #team " in line)
        pong = next(i for i, line in enumerate(lines) if " PONG " in line)
        self.assertLess(error, pong, lines)

    async def test_replies_from_the_home_node_come_from_the_user_s_server(
        self,
    ) -> None:
        # #team's home is node a (server a.test); bob is on b (b.test).
        self.assertTrue(self.bob.saw(":b.test 353 bob = #team :"), self.bob.read())
        self.assertTrue(self.bob.saw(":b.test 366 bob #team "))
        self.alice.send("TOPIC #team :plans")
        await eventually(lambda: self.bob.saw("TOPIC #team :plans"))
        carol = await self.network.user(self.b, "carol")
        carol.send("CAP REQ server-time", "JOIN #team")
        await eventually(lambda: carol.saw(" 366 carol #team "))
        self.assertTrue(carol.saw(":b.test 332 carol #team plans"), carol.read())
        self.assertTrue(carol.saw(":b.test 333 carol #team alice "))
        self.bob.send("MODE #team", "TOPIC #team :not mine", "NAMES #team")
        await eventually(lambda: self.bob.saw(" 482 bob #team "))
        await eventually(
            lambda: sum(" 366 bob #team " in line for line in self.bob.read()) == 2
        )
        self.assertTrue(self.bob.saw(":b.test 324 bob #team +"))
        self.assertTrue(self.bob.saw(":b.test 482 bob #team "))
        self.assertFalse(self.bob.saw(":a.test "), self.bob.read())
        self.assertFalse(carol.saw(":a.test "), carol.read())
        # Lines of users keep their source, whatever their text says.
        self.alice.send("PRIVMSG #team ::a.test 001 x")
        await eventually(
            lambda: self.bob.saw(":alice!~alice@127.0.0.1 PRIVMSG #team ::a.test 001 x")
        )

    async def test_who_names_each_member_s_own_node(self) -> None:
        self.alice.send("WHO #team", "WHO #team %tsn,7")
        await eventually(lambda: self.alice.saw(" 354 alice 7 b bob"))
        self.assertTrue(self.alice.saw(" 352 alice #team ~bob 127.0.0.1 b bob H "))
        self.assertTrue(self.alice.saw(" 352 alice #team ~alice 127.0.0.1 a alice "))
        self.assertTrue(self.alice.saw(" 354 alice 7 a alice"))

    async def test_topic_mode_and_kick_act_across_nodes(self) -> None:
        self.alice.send("TOPIC #team :shared plans")
        await eventually(lambda: self.bob.saw("TOPIC #team :shared plans"))
        await eventually(lambda: self.b.channels["#team"].topic == "shared plans")
        self.alice.send("MODE #team +v bob")
        await eventually(lambda: self.names(self.b).get("bob") == "v")
        self.bob.send("TOPIC #team :not mine")
        await eventually(lambda: self.bob.saw(" 482 bob #team "))
        self.alice.send("KICK #team bob :go out")
        await eventually(lambda: self.bob.saw("KICK #team bob :go out"))
        await eventually(lambda: "bob" not in self.names(self.b))
        self.assertNotIn("bob", self.names(self.a))
        self.assertNotIn("#team", self.bob.conn.channels)

    async def test_concurrent_modes_end_the_same_everywhere(self) -> None:
        self.alice.send("MODE #team +o bob")
        await eventually(lambda: self.names(self.b).get("bob") == "o")
        self.alice.send("MODE #team -o bob", "MODE #team +m")
        self.bob.send("MODE #team -o alice", "MODE #team +t")
        await eventually(
            lambda: (
                self.names(self.a) == self.names(self.b)
                and self.a.channels["#team"].flags == self.b.channels["#team"].flags
                and "m" in self.b.channels["#team"].flags
            )
        )

    async def test_a_quit_is_seen_once(self) -> None:
        self.bob.send("QUIT :bye now")
        await eventually(
            lambda: self.alice.saw("bob!~bob@127.0.0.1 QUIT :Quit: bye now")
        )
        await eventually(lambda: "bob" not in self.names(self.a))
        quits = [line for line in self.alice.read() if " QUIT " in line]
        self.assertEqual(len(quits), 1)

    async def test_a_dead_node_s_members_split_and_the_channel_lives_on(
        self,
    ) -> None:
        carol = await self.network.user(self.b, "carol")
        carol.send("JOIN #b")  # #b has its home on node b
        await eventually(lambda: carol.saw(" 366 carol #b "))
        self.alice.send("JOIN #b")
        await eventually(lambda: self.alice.saw(" 366 alice #b "))
        node_b = self.network.nodes["b"]
        node_b._tick.stop()
        node_b.linked = False
        await node_b._disconnect()
        await eventually(
            lambda: self.alice.saw(":bob!~bob@127.0.0.1 QUIT :*.net *.split"),
            timeout=LEASE * 4,
        )
        await eventually(lambda: self.alice.saw(":carol!~carol@127.0.0.1 QUIT"))
        quits = [
            line for line in self.alice.read() if "bob!" in line and " QUIT " in line
        ]
        self.assertEqual(len(quits), 1, "one QUIT, though bob shared two channels")
        self.assertEqual(self.names(self.a), {"alice": "o"})
        # #b lost its home with node b; it gets a new one and goes on.
        dave = await self.network.user(self.a, "dave")
        dave.send("JOIN #b")
        await eventually(lambda: self.alice.saw(":dave!~dave@127.0.0.1 JOIN #b"))
        self.alice.send("PRIVMSG #b :still here")
        await eventually(lambda: dave.saw("PRIVMSG #b :still here"))
