"""Network-wide limits of a cluster, with a real Redis and nodes in this
process: max-clients, login throttles, registrations per address, WHOWAS,
ChanServ's registered list and NickServ's guest renames, and what each does
while Redis is away.

The nodes share one account store (in memory), as cluster nodes share
PostgreSQL; each has its own `Accounts`, so nothing is shared in-process
but the store.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, ClassVar

from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from chat.accounts import Accounts
from chat.cluster.node import ClusterNode
from chat.config import Limits, ServerConfig, Timeouts
from chat.server import ChatServer
from chat.storage.sqlite import SQLiteStore
from tests.accounts_support import PASSWORD, TEST_COST, plain
from tests.redis_support import RedisServer
from tests.test_cluster import LEASE, Client, Network, TwoNodes, eventually, reactor

GRACE = 1.0


class SharedStoreNetwork(Network):
    """Nodes with *limits*, sharing one account and channel store."""

    def __init__(self, case: TestCase, redis: RedisServer, **limits: Any) -> None:
        super().__init__(case, redis)
        self.limits = Limits(**limits)
        self.store = SQLiteStore(":memory:")
        case.addCleanup(self.store.close)

    def make_server(self, name: str) -> ChatServer:
        config = ServerConfig(
            server_name=f"{name}.test",
            network="TestNet",
            limits=self.limits,
            timeouts=Timeouts(nick_grace=GRACE),
        )
        accounts = Accounts(self.store, reactor, TEST_COST)
        server = ChatServer(config, reactor, accounts=accounts)
        self.case.addCleanup(server.events.stop)
        return server

    async def account(self, name: str) -> None:
        """Register account *name* (password `PASSWORD`) in the shared store."""
        await self.nodes["a"].server.accounts.register(name, PASSWORD)


def refused(client: Client) -> bool:
    return client.disconnected and client.saw("Server is full")


class Limited(TwoNodes):
    """Two nodes a and b on one Redis, sharing one store, with `limits`;
    alice on a, bob on b."""

    limits: ClassVar[dict[str, Any]] = {}

    def make_network(self) -> Network:
        return SharedStoreNetwork(self, self.redis, **self.limits)

    def kill(self, name: str) -> ClusterNode:
        """Node *name* dies without a word (its lease runs out)."""
        node = self.network.nodes[name]
        node._tick.stop()
        node.shared._tick.stop()
        node.linked = False
        return node


class MaxClientsTests(Limited):
    limits: ClassVar[dict[str, Any]] = {"max_clients": 3}

    async def test_the_limit_counts_clients_of_every_node(self) -> None:
        carol = await self.network.user(self.a, "carol")
        self.assertTrue(carol.conn.registered)
        late = Client(self.b)
        late.send("NICK dave", "USER d 0 * :D")
        await eventually(lambda: refused(late))
        self.assertFalse(late.conn.registered)
        self.assertEqual(self.b.stats["connections_refused"], 1)
        # One leaves on node a: there is room again, on node b too.
        carol.send("QUIT")
        dave = await self.network.user(self.b, "dave")
        self.assertTrue(dave.conn.registered)

    async def test_two_nodes_admitting_at_once_admit_one(self) -> None:
        first, second = Client(self.a), Client(self.b)
        await eventually(lambda: refused(first) or refused(second))
        winner = second if refused(first) else first
        await eventually(lambda: not winner.conn.held)
        self.assertFalse(refused(winner))
        self.assertEqual(self.redis.command("HLEN", "chat:clients"), b":2")

    async def test_a_dead_node_s_clients_stop_counting(self) -> None:
        await self.network.user(self.b, "carol")
        full = Client(self.a)
        await eventually(lambda: refused(full))
        await self.kill("b")._disconnect()
        await eventually(lambda: self.a.find_user("bob") is None, timeout=LEASE * 4)
        erin = await self.network.user(self.a, "erin")
        frank = await self.network.user(self.a, "frank")
        self.assertTrue(erin.conn.registered and frank.conn.registered)

    async def test_with_redis_away_each_node_counts_its_own(self) -> None:
        self.redis.stop()
        await eventually(lambda: not self.network.nodes["a"].linked)
        # Three clients on a alone (bob on b no longer counts here) ...
        second, third = Client(self.a), Client(self.a)
        self.assertFalse(second.disconnected or third.disconnected)
        second.send("PING :x")
        self.assertTrue(second.saw("PONG"))
        # ... and not a fourth: the local limit still holds.
        fourth = Client(self.a)
        self.assertTrue(refused(fourth))


class LoginThrottleTests(Limited):
    async def setUp(self) -> None:
        await super().setUp()
        await self.network.account("victim")

    def identify(self, client: Client, password: str) -> None:
        client.send(f"PRIVMSG NickServ :IDENTIFY victim {password}")

    @staticmethod
    def failures(client: Client) -> int:
        """How many failed logins *client* was told of."""
        return sum("Invalid account or password" in x for x in client.read())

    async def test_failures_on_two_nodes_add_up(self) -> None:
        # The allowance is 5 failures per account on the whole network.
        for _ in range(3):
            self.identify(self.alice, "wrong")
        await eventually(lambda: self.failures(self.alice) == 3)
        for _ in range(2):
            self.identify(self.bob, "wrong")
        await eventually(lambda: self.failures(self.bob) == 2)
        self.identify(self.alice, PASSWORD)
        await eventually(lambda: self.alice.saw("Too many failed logins; wait"))
        self.assertIsNone(self.alice.conn.account)
        # SASL on node b is refused the same way, without checking.
        sasl = Client(self.b)
        sasl.send("CAP LS 302", "CAP REQ sasl", "NICK sam", "USER s 0 * :S")
        sasl.send("AUTHENTICATE PLAIN")
        await eventually(lambda: sasl.saw("AUTHENTICATE +"))
        sasl.send(f"AUTHENTICATE {plain('victim', PASSWORD)}")
        await eventually(lambda: sasl.saw(" 904 "))
        self.assertIsNone(sasl.conn.account)

    async def test_a_success_clears_the_account_everywhere(self) -> None:
        for _ in range(4):
            self.identify(self.bob, "wrong")
        await eventually(lambda: self.failures(self.bob) == 4)
        self.identify(self.alice, PASSWORD)
        await eventually(lambda: self.alice.conn.account == "victim")
        carol = await self.network.user(self.b, "carol")
        for _ in range(4):
            carol.send("PRIVMSG NickServ :IDENTIFY victim wrong")
        carol.send(f"PRIVMSG NickServ :IDENTIFY victim {PASSWORD}")
        await eventually(lambda: carol.conn.account == "victim")

    async def test_with_redis_away_logins_are_refused(self) -> None:
        self.redis.stop()
        await eventually(lambda: not self.network.nodes["a"].linked)
        self.identify(self.alice, PASSWORD)
        await eventually(lambda: self.alice.saw("The account service is unavailable"))
        self.assertIsNone(self.alice.conn.account)


class RegistrationLimitTests(Limited):
    """Three accounts an hour per address, counted on every node (loopback
    is not exempt here)."""

    limits: ClassVar[dict[str, Any]] = {"exempt": ()}
    KEY = "chat:registrations:127.0.0.1"

    async def account_exists(self, name: str) -> bool:
        return await self.network.store.get_account(name) is not None

    async def test_registrations_on_two_nodes_add_up(self) -> None:
        self.alice.send(f"REGISTER * * {PASSWORD}")
        self.bob.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
        await eventually(lambda: self.alice.saw("REGISTER SUCCESS alice"))
        await eventually(lambda: self.bob.saw("Account bob registered"))
        carol = await self.network.user(self.a, "carol")
        carol.send(f"REGISTER * * {PASSWORD}")
        await eventually(lambda: carol.saw("REGISTER SUCCESS carol"))
        # The address has had its three: refused on either node.
        dave = await self.network.user(self.b, "dave")
        dave.send(f"REGISTER * * {PASSWORD}")
        await eventually(
            lambda: dave.saw(
                "FAIL REGISTER TEMPORARILY_UNAVAILABLE dave :Too many registrations"
            )
        )
        erin = await self.network.user(self.a, "erin")
        erin.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
        await eventually(lambda: erin.saw("Too many registrations from your address"))
        self.assertFalse(await self.account_exists("dave"))
        self.assertFalse(await self.account_exists("erin"))
        self.assertEqual(self.redis.command("ZCARD", self.KEY), b":3")

    async def test_two_nodes_taking_the_last_allowance_at_once(self) -> None:
        now = repr(time.time())
        self.redis.command("ZADD", self.KEY, now, "earlier-1", now, "earlier-2")
        self.alice.send(f"REGISTER * * {PASSWORD}")
        self.bob.send(f"REGISTER * * {PASSWORD}")
        await eventually(
            lambda: self.alice.saw("REGISTER ") and self.bob.saw("REGISTER ")
        )
        outcomes = sorted(
            (self.alice.saw("REGISTER SUCCESS"), self.bob.saw("REGISTER SUCCESS"))
        )
        self.assertEqual(outcomes, [False, True])
        self.assertEqual(self.redis.command("ZCARD", self.KEY), b":3")

    async def test_with_redis_away_registrations_are_refused(self) -> None:
        self.redis.stop()
        await eventually(lambda: not self.network.nodes["a"].linked)
        await eventually(lambda: not self.network.nodes["b"].linked)
        self.alice.send(f"REGISTER * * {PASSWORD}")
        await eventually(
            lambda: self.alice.saw(
                "FAIL REGISTER TEMPORARILY_UNAVAILABLE alice :Try again later"
            )
        )
        self.bob.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
        await eventually(lambda: self.bob.saw("The account service is unavailable"))
        self.assertFalse(await self.account_exists("alice"))
        self.assertFalse(await self.account_exists("bob"))


class WhowasTests(Limited):
    async def test_a_user_who_left_another_node_shows(self) -> None:
        self.bob.send("NICK robert")
        await eventually(lambda: self.a.find_user("robert") is not None)
        self.bob.send("QUIT :bye")
        await eventually(lambda: self.a.find_user("robert") is None)
        self.alice.send("WHOWAS robert", "WHOWAS bob 1")
        await eventually(
            lambda: self.alice.read().count(":a.test 369 alice bob :End of WHOWAS") == 1
        )
        lines = self.alice.read()
        self.assertTrue(
            any(" 314 alice robert ~bob 127.0.0.1 * :bob Real" in x for x in lines),
            lines,
        )
        self.assertTrue(any(" 312 alice robert b " in x for x in lines), lines)
        self.assertTrue(
            any(" 314 alice bob ~bob 127.0.0.1 * :bob Real" in x for x in lines),
            lines,
        )
        self.assertEqual(self.redis.command("LLEN", "chat:whowas:robert"), b":1")

    async def test_with_redis_away_whowas_answers_from_memory(self) -> None:
        carol = await self.network.user(self.a, "carol")
        self.redis.stop()
        await eventually(lambda: not self.network.nodes["a"].linked)
        carol.send("QUIT")
        self.alice.send("WHOWAS carol", "WHOWAS nobody")
        lines = self.alice.read()
        self.assertTrue(any(" 314 alice carol ~carol " in x for x in lines), lines)
        self.assertTrue(any(" 406 alice nobody " in x for x in lines), lines)


class ChanServTests(Limited):
    async def setUp(self) -> None:
        await super().setUp()
        await self.network.account("alice")
        self.alice.send(f"PRIVMSG NickServ :IDENTIFY {PASSWORD}", "JOIN #proj")
        await eventually(lambda: self.alice.saw(" 366 alice #proj "))
        await eventually(lambda: self.alice.conn.account == "alice")

    async def test_a_registration_and_a_drop_reach_the_other_node(self) -> None:
        self.alice.send("PRIVMSG ChanServ :REGISTER #proj")
        await eventually(lambda: self.alice.saw("#proj is registered to alice"))
        chanserv_b = self.b.services.chanserv
        await eventually(lambda: "#proj" in chanserv_b.registered)
        self.bob.send("PRIVMSG ChanServ :INFO #proj")
        await eventually(lambda: self.bob.saw("#proj: founder alice"))
        self.alice.send("PRIVMSG ChanServ :DROP #proj")
        await eventually(lambda: self.alice.saw("#proj is no longer registered"))
        await eventually(lambda: "#proj" not in chanserv_b.registered)

    async def test_after_redis_comes_back_a_node_reads_them_all(self) -> None:
        self.redis.stop()
        await eventually(lambda: not self.network.nodes["b"].linked)
        # Registered while node b could not be told.
        self.alice.send("PRIVMSG ChanServ :REGISTER #proj")
        await eventually(lambda: self.alice.saw("#proj is registered to alice"))
        self.assertNotIn("#proj", self.b.services.chanserv.registered)
        self.redis.start()
        await eventually(lambda: self.network.nodes["b"].linked, timeout=20)
        await eventually(lambda: "#proj" in self.b.services.chanserv.registered)


class GuestRenameTests(Limited):
    async def setUp(self) -> None:
        await super().setUp()
        await self.network.account("dave")
        guests = (f"Guest{n}" for n in itertools.count(11111, 11111))
        protection = self.a.services.nickserv.protection
        protection.guest_nick = lambda: next(guests)  # type: ignore[method-assign]

    async def test_the_guest_nick_is_claimed_network_wide(self) -> None:
        # Node b holds Guest11111 for a client still registering: node a
        # cannot see it but in Redis.
        holder = Client(self.b)
        holder.send("NICK Guest11111")
        await eventually(lambda: self.b.nicks.get("guest11111") is holder.conn)
        impostor = await self.network.user(self.a, "dave")
        await eventually(lambda: impostor.conn.nick == "Guest22222", timeout=5)
        self.assertTrue(impostor.saw("you are now Guest22222"))
        owner = await self.network.nodes["b"].redis.hget("chat:nicks", "guest22222")
        self.assertTrue(str(owner).startswith("a/"), owner)
        await eventually(lambda: self.b.find_user("Guest22222") is not None)
        self.assertIsNone(self.b.find_user("dave"))
        taker = Client(self.b)
        taker.send("NICK Guest22222", "USER t 0 * :T")
        await eventually(lambda: taker.saw(" 433 * Guest22222 "))
        self.assertEqual(holder.conn.nick, "Guest11111")

    async def test_with_redis_away_the_rename_waits(self) -> None:
        impostor = await self.network.user(self.a, "dave")
        await eventually(lambda: impostor.saw("The nick dave is registered"))
        self.redis.stop()
        await eventually(lambda: not self.network.nodes["a"].linked)
        await eventually(lambda: impostor.saw("lost its link"))
        # No guest nick can be claimed: still dave after the grace period.
        await deferLater(reactor, GRACE * 1.5, lambda: None)
        self.assertEqual(impostor.conn.nick, "dave")
        self.redis.start()
        await eventually(lambda: self.network.nodes["a"].linked, timeout=20)
        await eventually(lambda: impostor.conn.nick != "dave", timeout=GRACE * 4)
        self.assertTrue(impostor.conn.nick.startswith("Guest"))
        owner = await self.network.nodes["a"].redis.hget(
            "chat:nicks", impostor.conn.nick.lower()
        )
        self.assertTrue(str(owner).startswith("a/"), owner)
