"""Tests for chat.limits: fakelag, send queues, connection limits, timeouts,
and the per-client protocol limits advertised in ISUPPORT."""

from __future__ import annotations

from dataclasses import replace

from twisted.internet.address import IPv6Address, UNIXAddress
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from chat import casemap, numerics
from chat.config import Limits, ServerConfig, Timeouts
from chat.limits import (
    ConnectionLimiter,
    Refusal,
    TokenBucket,
    address_key,
    buffered_bytes,
    is_exempt,
    parse_networks,
)
from chat.protocol import ChatProtocol
from tests.support import LOOPBACK, FakeClient, Harness

#: A documentation address: not exempt by default.
FAR = "203.0.113.7"


class AddressTests(TestCase):
    def test_ipv4_key_is_the_address(self) -> None:
        self.assertEqual(address_key("192.0.2.1"), "192.0.2.1")

    def test_ipv6_key_is_the_64(self) -> None:
        self.assertEqual(address_key("2001:db8::1"), "2001:db8::/64")
        self.assertEqual(address_key("2001:db8::ffff:1"), "2001:db8::/64")
        self.assertEqual(address_key("2001:db8:0:1::1"), "2001:db8:0:1::/64")
        self.assertEqual(address_key("fe80::1%eth0"), "fe80::/64")

    def test_ipv4_mapped_ipv6_counts_as_ipv4(self) -> None:
        self.assertEqual(address_key("::ffff:192.0.2.1"), "192.0.2.1")

    def test_other_hosts_are_their_own_key(self) -> None:
        self.assertEqual(address_key("unknown"), "unknown")

    def test_exemptions_take_addresses_and_networks(self) -> None:
        entries = ("127.0.0.1", "2001:db8::/32", "10.0.0.0/8")
        self.assertTrue(is_exempt("127.0.0.1", entries))
        self.assertTrue(is_exempt("10.1.2.3", entries))
        self.assertTrue(is_exempt("2001:db8:1::5", entries))
        self.assertTrue(is_exempt("::ffff:10.0.0.1", entries))
        self.assertFalse(is_exempt("127.0.0.2", entries))
        self.assertFalse(is_exempt("unknown", entries))

    def test_bad_exemption_is_named(self) -> None:
        with self.assertRaises(ValueError) as caught:
            parse_networks(("127.0.0.1", "localhost"))
        self.assertIn("'localhost'", str(caught.exception))

    def test_bad_exemption_is_logged_and_skipped(self) -> None:
        logged: list[dict[str, object]] = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        entries = ("nonsense", "192.0.2.0/24")
        self.assertTrue(is_exempt("192.0.2.1", entries))
        self.assertTrue(is_exempt("192.0.2.2", entries))
        errors = [e for e in logged if e["log_level"] == LogLevel.error]
        self.assertEqual(len(errors), 1)
        self.assertIn("'nonsense'", formatEvent(errors[0]))


class TokenBucketTests(TestCase):
    def test_burst_then_rate(self) -> None:
        bucket = TokenBucket(3, 2.0, now=0.0)
        self.assertEqual([bucket.take(0.0) for _ in range(3)], [0.0, 0.0, 0.5])
        self.assertEqual(bucket.take(0.5), 0.5)
        self.assertEqual(bucket.level(100.0), 3)

    def test_initial_allowance_above_capacity_is_not_refilled(self) -> None:
        bucket = TokenBucket(2, 1.0, now=0.0, tokens=5)
        for _ in range(4):
            self.assertTrue(bucket.try_take(0.0))
        self.assertEqual(bucket.level(10.0), 2)

    def test_try_take_refuses_when_empty(self) -> None:
        bucket = TokenBucket(1, 0.5, now=0.0)
        self.assertTrue(bucket.try_take(0.0))
        self.assertFalse(bucket.try_take(1.0))
        self.assertTrue(bucket.try_take(2.0))

    def test_zero_rate_still_refills(self) -> None:
        bucket = TokenBucket(1, 0.0, now=0.0)
        self.assertGreater(bucket.take(0.0), 0)
        self.assertLess(bucket.take(0.0), float("inf"))


def flood_harness(**limits: object) -> Harness:
    settings: dict[str, object] = {
        "flood_burst": 5,
        "flood_rate": 2.0,
        "flood_connect_burst": 5,
        "flood_max_queued": 10,
    }
    settings.update(limits)
    return Harness(limits=Limits(**settings))  # type: ignore[arg-type]


def pongs(client: FakeClient) -> list[str]:
    return [m.params[-1] for m in client.messages() if m.command == "PONG"]


class FakelagTests(TestCase):
    def test_burst_then_steady_rate(self) -> None:
        harness = flood_harness()
        client = harness.connect(FAR)
        client.send(*(f"PING {n}" for n in range(8)))
        self.assertEqual(pongs(client), ["0", "1", "2", "3", "4"])
        self.assertEqual(client.transport.producerState, "paused")
        harness.clock.advance(0.5)
        self.assertEqual(pongs(client), ["5"])
        harness.clock.advance(0.5)
        self.assertEqual(pongs(client), ["6"])
        harness.clock.advance(0.5)
        self.assertEqual(pongs(client), ["7"])
        harness.clock.advance(0.5)
        self.assertEqual(client.transport.producerState, "producing")
        self.assertFalse(client.disconnected)
        self.assertEqual(harness.server.stats["flood_delays"], 4)

    def test_nothing_dropped_and_order_kept(self) -> None:
        harness = flood_harness(flood_max_queued=100)
        client = harness.connect(FAR)
        client.send_raw(b"".join(b"PING %d\r\n" % n for n in range(40)))
        received: list[str] = []
        for _ in range(40):
            received += pongs(client)
            harness.clock.advance(0.5)
        self.assertEqual(received, [str(n) for n in range(40)])

    def test_steady_client_is_never_delayed(self) -> None:
        harness = flood_harness()
        client = harness.connect(FAR)
        for n in range(30):
            client.send(f"PING {n}")
            self.assertEqual(pongs(client), [str(n)])
            harness.clock.advance(0.5)
        self.assertEqual(harness.server.stats["flood_delays"], 0)

    def test_refills_after_a_pause(self) -> None:
        harness = flood_harness()
        client = harness.connect(FAR)
        client.send(*(f"PING {n}" for n in range(5)))
        harness.clock.advance(10)
        client.raw()
        client.send(*(f"PING {n}" for n in range(5)))
        self.assertEqual(len(pongs(client)), 5)

    def test_connect_burst_covers_registration_and_joins(self) -> None:
        harness = Harness()
        client = harness.connect(FAR)
        client.send("CAP LS 302", "NICK alice", "USER alice 0 * :A", "CAP END")
        client.send(*(f"JOIN #c{n}" for n in range(20)))
        client.send(*(f"MODE #c{n}" for n in range(20)))
        self.assertEqual(len(client.conn.channels), 20)
        self.assertIn(numerics.RPL_CHANNELMODEIS, client.commands())
        self.assertEqual(harness.server.stats["flood_delays"], 0)

    def test_excess_flood_is_disconnected(self) -> None:
        harness = flood_harness()
        watcher = harness.register("watcher")
        flooder = harness.register("flooder", FAR)
        for client in (watcher, flooder):
            client.send("JOIN #chan")
            client.raw()
        flooder.send(*(f"PRIVMSG #chan :{n}" for n in range(30)))
        self.assertTrue(flooder.disconnected)
        self.assertEqual(
            flooder.lines()[-1], f"ERROR :Closing Link: {FAR} (Excess Flood)"
        )
        lines = watcher.lines()
        self.assertEqual(lines[-1], f":flooder!~flooder@{FAR} QUIT :Excess Flood")
        self.assertEqual(len(lines), 4)  # the burst left after NICK, USER, JOIN
        self.assertEqual(harness.server.stats["flood_kills"], 1)
        self.assertIsNone(harness.server.find_user("flooder"))
        # Reading resumes so that a TLS goodbye can finish; input is ignored.
        self.assertEqual(flooder.transport.producerState, "producing")
        flooder.send("PRIVMSG #chan :more")
        harness.clock.advance(60)
        self.assertEqual(flooder.lines(), [])
        self.assertEqual(watcher.lines(), [])

    def test_backlog_at_the_limit_is_kept(self) -> None:
        harness = flood_harness()
        client = harness.connect(FAR)
        client.send(*(f"PING {n}" for n in range(5 + 10)))
        self.assertFalse(client.disconnected)
        harness.clock.pump([0.5] * 10)
        self.assertEqual(len(pongs(client)), 15)

    def test_operators_are_not_throttled(self) -> None:
        harness = flood_harness()
        oper = harness.register("oper", FAR)
        oper.conn.modes.add("o")
        oper.send(*(f"PING {n}" for n in range(100)))
        self.assertEqual(len(pongs(oper)), 100)
        self.assertFalse(oper.disconnected)

    def test_exempt_addresses_are_not_throttled(self) -> None:
        harness = flood_harness(fakelag_exempt=("198.51.100.0/24",))
        exempt = harness.connect("198.51.100.9")
        exempt.send(*(f"PING {n}" for n in range(100)))
        self.assertEqual(len(pongs(exempt)), 100)
        local = flood_harness(fakelag_exempt=LOOPBACK).connect("127.0.0.1")
        local.send(*(f"PING {n}" for n in range(100)))
        self.assertEqual(len(pongs(local)), 100)

    def test_loopback_is_paced_by_default(self) -> None:
        # limits.exempt (loopback by default) covers connection limits only.
        harness = Harness()
        self.assertIn("127.0.0.1", harness.server.config.limits.exempt)
        local = harness.connect("127.0.0.1")
        limits = harness.server.config.limits
        local.send(*(f"PING {n}" for n in range(limits.flood_connect_burst + 5)))
        self.assertEqual(len(pongs(local)), limits.flood_connect_burst)
        self.assertEqual(harness.server.stats["flood_delays"], 1)

    def test_connection_exemption_does_not_lift_fakelag(self) -> None:
        harness = flood_harness(exempt=("198.51.100.0/24",))
        client = harness.connect("198.51.100.9")
        client.send(*(f"PING {n}" for n in range(8)))
        self.assertEqual(len(pongs(client)), 5)

    def test_others_keep_chatting_while_one_is_delayed(self) -> None:
        harness = flood_harness(flood_max_queued=1000)
        alice, bob = harness.channel_of("alice", "bob")
        flooder = harness.register("flooder", FAR)
        flooder.send(*(f"PING {n}" for n in range(200)))
        alice.send("PRIVMSG #chan :still here")
        self.assertEqual(
            bob.lines(), [":alice!~alice@127.0.0.1 PRIVMSG #chan :still here"]
        )

    def test_quit_while_delayed_cancels_the_resume(self) -> None:
        harness = flood_harness()
        client = harness.connect(FAR)
        client.send(*(f"PING {n}" for n in range(5)), "QUIT :bye")
        client.conn.connectionLost()
        self.assertEqual(harness.clock.getDelayedCalls(), [])


def sendq_harness(limit: int = 1000) -> Harness:
    return Harness(limits=Limits(sendq_bytes=limit))


class SendQueueTests(TestCase):
    def test_producer_registered_on_transport(self) -> None:
        client = Harness().connect()
        self.assertIsNotNone(client.transport.producer)
        self.assertTrue(client.transport.streaming)

    def test_reader_that_stops_reading_is_dropped(self) -> None:
        harness = sendq_harness(1000)
        alice, bob = harness.channel_of("alice", "bob")
        bob.transport.producer.pauseProducing()
        before = len(bob.transport.value())
        for n in range(30):
            alice.send(f"PRIVMSG #chan :message number {n} " + "x" * 40)
        self.assertFalse(bob.disconnected)
        queued = len(bob.transport.value()) - before
        self.assertLessEqual(queued, 1000)
        self.assertGreater(queued, 900)
        harness.clock.advance(0)
        self.assertTrue(bob.disconnected)
        self.assertTrue(bob.transport.disconnected, "aborted, not flushed")
        self.assertEqual(harness.server.stats["sendq_kills"], 1)
        self.assertEqual(alice.lines()[-1], ":bob!~bob@127.0.0.1 QUIT :SendQ exceeded")
        self.assertIsNone(bob.transport.producer)

    def test_repeated_pause_does_not_reset_the_count(self) -> None:
        harness = sendq_harness(500)
        alice, bob = harness.channel_of("alice", "bob")
        for n in range(20):
            bob.transport.producer.pauseProducing()
            alice.send(f"PRIVMSG #chan :{n} " + "x" * 40)
        harness.clock.advance(0)
        self.assertTrue(bob.disconnected)

    def test_resume_means_the_buffer_drained(self) -> None:
        harness = sendq_harness(500)
        alice, bob = harness.channel_of("alice", "bob")
        for n in range(20):
            bob.transport.producer.pauseProducing()
            alice.send(f"PRIVMSG #chan :{n} " + "x" * 40)
            bob.transport.producer.resumeProducing()
        harness.clock.advance(0)
        self.assertFalse(bob.disconnected)
        self.assertEqual(harness.server.stats["sendq_kills"], 0)

    def test_real_backlog_decides_past_the_count(self) -> None:
        harness = sendq_harness(500)
        alice, bob = harness.channel_of("alice", "bob")
        sendq = bob.transport.producer
        backlog = [100]
        sendq.measure = lambda transport: backlog[0]
        sendq.pauseProducing()
        for n in range(30):
            alice.send(f"PRIVMSG #chan :{n} " + "x" * 40)
        harness.clock.advance(0)
        self.assertFalse(bob.disconnected, "it has been reading")
        backlog[0] = 501
        for n in range(30):
            alice.send(f"PRIVMSG #chan :{n} " + "x" * 40)
        harness.clock.advance(0)
        self.assertTrue(bob.disconnected)

    def test_no_socket_to_measure_means_the_count_decides(self) -> None:
        self.assertIsNone(buffered_bytes(StringTransport()))

    def test_reading_client_is_never_counted(self) -> None:
        harness = sendq_harness(100)
        alice, bob = harness.channel_of("alice", "bob")
        for n in range(50):
            alice.send(f"PRIVMSG #chan :{n} " + "x" * 40)
        harness.clock.advance(0)
        self.assertFalse(bob.disconnected)

    def test_drop_in_the_middle_of_a_broadcast(self) -> None:
        harness = sendq_harness(100)
        clients = harness.channel_of("alice", "bob", "carol", "dave")
        for client in clients[1:3]:
            client.transport.producer.pauseProducing()
        clients[0].send("PRIVMSG #chan :" + "y" * 150)
        self.assertEqual(clients[3].commands(), ["PRIVMSG"])
        harness.clock.advance(0)
        self.assertTrue(clients[1].disconnected)
        self.assertTrue(clients[2].disconnected)
        clients[0].send("PRIVMSG #chan :after")
        self.assertEqual(clients[3].commands(), ["QUIT", "QUIT", "PRIVMSG"])
        self.assertEqual(harness.server.stats["sendq_kills"], 2)


class CloseTests(TestCase):
    def test_close_unregisters_producer_and_aborts_after_grace(self) -> None:
        harness = Harness(timeouts=Timeouts(close_grace=5))
        client = harness.register("alice")
        client.send("QUIT :bye")
        self.assertIsNone(client.transport.producer)
        self.assertTrue(client.transport.disconnecting)
        harness.clock.advance(4.9)
        self.assertFalse(client.transport.disconnected)
        harness.clock.advance(0.1)
        self.assertTrue(client.transport.disconnected)

    def test_connection_lost_cancels_the_abort(self) -> None:
        harness = Harness()
        client = harness.register("alice")
        client.send("QUIT")
        client.conn.connectionLost()
        self.assertEqual(harness.clock.getDelayedCalls(), [])


class ConnectionLimitTests(TestCase):
    def harness(self, **limits: object) -> Harness:
        return Harness(limits=replace(Limits(), **limits))  # type: ignore[arg-type]

    def assertRefused(self, client: FakeClient, reason: str, host: str = FAR) -> None:
        self.assertIsInstance(client.conn, Refusal)
        self.assertEqual(client.lines(), [f"ERROR :Closing Link: {host} ({reason})"])
        self.assertTrue(client.disconnected)

    def test_per_address_limit(self) -> None:
        harness = self.harness(max_per_address=2)
        first, second = harness.connect(FAR), harness.connect(FAR)
        third = harness.connect(FAR)
        self.assertRefused(third, "Too many connections from your address")
        self.assertEqual(harness.server.connections, {first.conn, second.conn})
        self.assertEqual(harness.server.stats["connections_refused"], 1)
        self.assertIsInstance(harness.connect("203.0.113.8").conn, ChatProtocol)
        first.send("QUIT")
        first.conn.connectionLost()
        self.assertIsInstance(harness.connect(FAR).conn, ChatProtocol)

    def test_connection_lost_without_quit_frees_the_slot(self) -> None:
        harness = self.harness(max_per_address=1)
        first = harness.connect(FAR)
        first.conn.connectionLost()
        self.assertIsInstance(harness.connect(FAR).conn, ChatProtocol)
        self.assertEqual(harness.server.limiter.total, 1)

    def test_ipv6_addresses_count_per_64(self) -> None:
        harness = self.harness(max_per_address=2)

        def connect(host: str) -> object:
            transport = StringTransport(peerAddress=IPv6Address("TCP", host, 1))
            conn = harness.server.buildProtocol(transport.getPeer())
            conn.makeConnection(transport)
            return conn

        connect("2001:db8::1")
        connect("2001:db8::2")
        self.assertIsInstance(connect("2001:db8::ffff:3"), Refusal)
        self.assertIsInstance(connect("2001:db8:0:1::1"), ChatProtocol)
        self.assertEqual(harness.server.limiter.open_from("2001:db8::9"), 2)

    def test_connection_rate_per_address(self) -> None:
        harness = self.harness(connect_burst=3, connect_rate=0.5)
        for _ in range(3):
            client = harness.connect(FAR)
            client.conn.connectionLost()
        self.assertRefused(harness.connect(FAR), "Connecting too fast, try again later")
        self.assertIsInstance(harness.connect("203.0.113.8").conn, ChatProtocol)
        harness.clock.advance(2)
        self.assertIsInstance(harness.connect(FAR).conn, ChatProtocol)
        self.assertRefused(harness.connect(FAR), "Connecting too fast, try again later")

    def test_total_limit_applies_to_everyone(self) -> None:
        harness = self.harness(max_clients=2)
        harness.connect(FAR)
        harness.connect("127.0.0.1")
        self.assertRefused(harness.connect("127.0.0.1"), "Server is full", "127.0.0.1")
        self.assertEqual(len(harness.server.connections), 2)

    def test_exempt_addresses_skip_per_address_limits(self) -> None:
        harness = self.harness(max_per_address=1, connect_burst=1)
        for _ in range(5):
            self.assertIsInstance(harness.connect("127.0.0.1").conn, ChatProtocol)
        harness = self.harness(max_per_address=1, exempt=("203.0.113.0/24",))
        for _ in range(5):
            self.assertIsInstance(harness.connect(FAR).conn, ChatProtocol)

    def test_peers_without_an_address_share_no_limit(self) -> None:
        harness = self.harness(max_per_address=1, connect_burst=1)
        for _ in range(3):
            transport = StringTransport(peerAddress=UNIXAddress(None))
            conn = harness.server.buildProtocol(transport.getPeer())
            self.assertIsInstance(conn, ChatProtocol)
            conn.makeConnection(transport)
        self.assertEqual(len(harness.server.connections), 3)

    def test_new_limits_apply_to_new_connections(self) -> None:
        harness = self.harness(max_per_address=5)
        for _ in range(2):
            harness.connect(FAR)
        server = harness.server
        server.config = replace(server.config, limits=Limits(max_per_address=2))
        self.assertRefused(
            harness.connect(FAR), "Too many connections from your address"
        )

    def test_refused_connection_keeps_no_state(self) -> None:
        harness = self.harness(max_per_address=1)
        harness.connect(FAR)
        refused = harness.connect(FAR)
        refused.send("NICK x", "USER x 0 * :x")
        self.assertEqual(len(harness.server.connections), 1)
        self.assertEqual(harness.server.nicks, {})
        self.assertEqual(harness.server.limiter.open_from(FAR), 1)

    def test_refusal_aborts_a_peer_that_does_not_go(self) -> None:
        harness = self.harness(max_per_address=1)
        harness.connect(FAR)
        refused = harness.connect(FAR)
        harness.clock.advance(ServerConfig().timeouts.close_grace)
        self.assertTrue(refused.transport.disconnected)
        other = harness.connect(FAR)
        assert isinstance(other.conn, Refusal)
        other.conn.connectionLost()
        self.assertEqual(len(harness.clock.getDelayedCalls()), 1)  # alice's timer

    def test_idle_rate_buckets_are_forgotten(self) -> None:
        limiter = ConnectionLimiter()
        limits = Limits(connect_rate=1.0)
        for n in range(1024):
            self.assertIsNone(limiter.refusal(f"10.0.{n // 256}.{n % 256}", limits, 0))
        self.assertEqual(len(limiter._rates), 1024)
        limiter.refusal("10.99.0.1", limits, 100.0)
        self.assertEqual(len(limiter._rates), 1)


class TimeoutTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness(
            timeouts=Timeouts(
                registration=10, ping_interval=30, ping_timeout=20, close_grace=2
            )
        )

    def test_slowloris_before_registration(self) -> None:
        client = self.harness.connect(FAR)
        for byte in b"NICK slowpoke":
            client.send_raw(bytes([byte]))
            self.harness.clock.advance(1)
            if client.disconnected:
                break
        self.assertTrue(client.disconnected)
        self.assertEqual(self.harness.clock.seconds(), 10)
        self.assertIn("Registration timed out", client.lines()[-1])

    def test_slowloris_after_registration(self) -> None:
        client = self.harness.register("slow", FAR)
        for _ in range(60):
            client.send_raw(b"x")
            self.harness.clock.advance(1)
            if client.disconnected:
                break
        self.assertTrue(client.disconnected)
        self.assertEqual(self.harness.clock.seconds(), 50)
        self.assertIn("Ping timeout", client.lines()[-1])

    def test_silent_connection_is_aborted_at_the_registration_timeout(self) -> None:
        client = self.harness.connect(FAR)
        self.harness.clock.advance(9.9)
        self.assertFalse(client.transport.disconnecting)
        self.harness.clock.advance(0.1)
        self.assertTrue(client.transport.disconnected)

    def test_unregistered_talker_gets_the_grace(self) -> None:
        client = self.harness.connect(FAR)
        client.send("CAP LS 302")
        self.harness.clock.advance(10)
        self.assertTrue(client.transport.disconnecting)
        self.assertFalse(client.transport.disconnected)
        self.assertIn("Registration timed out", client.lines()[-1])
        self.harness.clock.advance(2)
        self.assertTrue(client.transport.disconnected)


class ProtocolLimitTests(TestCase):
    """The per-client limits other modules enforce, checked against config."""

    def setUp(self) -> None:
        self.limits = Limits(
            nick_length=9,
            channel_length=12,
            topic_length=20,
            max_targets=2,
            max_channels=3,
            max_list_entries=2,
        )
        self.harness = Harness(limits=self.limits)

    def isupport(self) -> list[str]:
        return self.harness.server.isupport()

    def test_isupport_advertises_the_limits(self) -> None:
        tokens = self.isupport()
        for token in (
            "NICKLEN=9",
            "CHANNELLEN=12",
            "TOPICLEN=20",
            "MAXTARGETS=2",
            f"CHANLIMIT={casemap.CHANTYPES}:3",
            "MAXLIST=b:2,e:2,I:2",
        ):
            self.assertIn(token, tokens)

    def test_channels_per_client(self) -> None:
        client = self.harness.register("alice")
        client.send("JOIN #a,#b,#c,#d")
        self.assertEqual(len(client.conn.channels), 3)
        self.assertIn(numerics.ERR_TOOMANYCHANNELS, client.commands())

    def test_targets_per_message(self) -> None:
        alice, bob, carol = (
            self.harness.register(n) for n in ("alice", "bob", "carol")
        )
        alice.send("PRIVMSG bob,carol,alice :hi")
        self.assertEqual(alice.commands(), [numerics.ERR_TOOMANYTARGETS])
        self.assertEqual(bob.lines(), [])
        alice.send("PRIVMSG bob,carol :hi")
        self.assertEqual(carol.commands(), ["PRIVMSG"])

    def test_ban_list_size(self) -> None:
        client = self.harness.register("alice")
        client.send("JOIN #a")
        client.raw()
        client.send("MODE #a +b a!*@*", "MODE #a +b b!*@*", "MODE #a +b c!*@*")
        self.assertEqual(client.commands()[-1], numerics.ERR_BANLISTFULL)
        self.assertEqual(len(self.harness.server.channels["#a"].bans), 2)

    def test_nick_length(self) -> None:
        client = self.harness.connect()
        client.send("NICK abcdefghij")
        self.assertEqual(client.commands(), [numerics.ERR_ERRONEUSNICKNAME])
        client.send("NICK abcdefghi", "USER a 0 * :A")
        self.assertTrue(client.conn.registered)

    def test_channel_name_length(self) -> None:
        client = self.harness.register("alice")
        client.send("JOIN #abcdefghijkl")
        self.assertEqual(client.commands(), [numerics.ERR_NOSUCHCHANNEL])
        client.send("JOIN #abcdefghijk")
        self.assertIn("JOIN", client.commands())

    def test_topic_length(self) -> None:
        client = self.harness.register("alice")
        client.send("JOIN #a")
        client.raw()
        client.send("TOPIC #a :" + "t" * 50)
        self.assertEqual(self.harness.server.channels["#a"].topic, "t" * 20)
