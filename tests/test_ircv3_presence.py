"""no-implicit-names, extended-monitor and draft/pre-away."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chat import numerics
from chat.commands.capabilities import SUPPORTED_CAPS
from tests.ircv3_support import registered, with_caps
from tests.support import FakeClient, Harness


class NoImplicitNamesTests(TestCase):
    def test_join_without_names(self) -> None:
        harness = Harness()
        alice = registered(harness, "alice", "no-implicit-names")
        alice.send("JOIN #chan")
        self.assertEqual(alice.commands(), ["JOIN"])
        alice.send("NAMES #chan")
        self.assertEqual(
            alice.commands(), [numerics.RPL_NAMREPLY, numerics.RPL_ENDOFNAMES]
        )

    def test_others_still_get_names(self) -> None:
        harness = Harness()
        bob = registered(harness, "bob")
        bob.send("JOIN #chan")
        self.assertIn(numerics.RPL_NAMREPLY, bob.commands())
        self.assertIn("no-implicit-names", SUPPORTED_CAPS)


class ExtendedMonitorTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.watcher = registered(
            self.harness, "watcher", "extended-monitor", "away-notify", "setname"
        )
        self.plain = registered(self.harness, "plain", "away-notify", "setname")
        self.bob = self.harness.register("bob")
        for client in (self.watcher, self.plain):
            client.send("MONITOR + bob")
            client.raw()

    def test_away_and_setname_reach_extended_monitor_watchers(self) -> None:
        self.bob.send("AWAY :lunch")
        self.assertEqual(self.watcher.lines(), [":bob!~bob@127.0.0.1 AWAY :lunch"])
        self.assertEqual(self.plain.lines(), [])
        self.bob.send("SETNAME :Robert Real")
        self.assertEqual(
            self.watcher.lines(), [":bob!~bob@127.0.0.1 SETNAME :Robert Real"]
        )
        self.assertEqual(self.plain.lines(), [])

    def test_watcher_without_the_notify_capability_hears_nothing(self) -> None:
        only = registered(self.harness, "only", "extended-monitor")
        only.send("MONITOR + bob")
        only.raw()
        self.bob.send("AWAY :lunch")
        self.assertEqual(only.lines(), [])

    def test_watcher_sharing_a_channel_hears_once(self) -> None:
        self.watcher.send("JOIN #c")
        self.bob.send("JOIN #c")
        self.watcher.raw()
        self.bob.send("AWAY :lunch")
        self.assertEqual(self.watcher.commands(), ["AWAY"])


class PreAwayTests(TestCase):
    def connect(self, harness: Harness, *caps: str) -> FakeClient:
        client = harness.connect()
        client.send("CAP LS 302")
        if caps:
            client.send(f"CAP REQ :{' '.join(caps)}")
        client.raw()
        return client

    def test_away_before_registration(self) -> None:
        harness = Harness()
        client = self.connect(harness, "draft/pre-away")
        client.send("AWAY :not here")
        self.assertEqual(
            client.lines(), [":irc.test 306 * :You have been marked as being away"]
        )
        client.send("NICK bob", "USER bob 0 * :Bob", "CAP END")
        self.assertTrue(client.conn.registered)
        alice = harness.register("alice")
        alice.send("WHOIS bob")
        self.assertIn("301", alice.commands())

    def test_away_star_keeps_the_visible_state(self) -> None:
        harness = Harness()
        client = self.connect(harness, "draft/pre-away")
        client.send("AWAY *")
        self.assertEqual(client.commands(), [numerics.RPL_UNAWAY])
        self.assertIsNone(client.conn.away)
        client.send("AWAY :gone", "AWAY *")
        self.assertEqual(client.conn.away, "gone")

    def test_without_the_capability_away_needs_registration(self) -> None:
        harness = Harness()
        client = self.connect(harness)
        client.send("AWAY :not here")
        self.assertEqual(client.commands(), [numerics.ERR_NOTREGISTERED])
        self.assertIsNone(client.conn.away)


class AwayNotifyStillWorksTests(TestCase):
    def test_channel_peer_hears_away(self) -> None:
        harness = Harness()
        alice, bob = harness.channel_of("alice", "bob")
        with_caps(alice, "away-notify")
        bob.send("AWAY :out")
        self.assertEqual(alice.lines(), [":bob!~bob@127.0.0.1 AWAY :out"])


class CapLsLinesTests(TestCase):
    def test_pre_302_clients_get_one_line(self) -> None:
        harness = Harness()
        for request in ("CAP LS", "CAP LS 301"):
            client = harness.connect()
            client.send(request)
            [line] = client.lines()
            self.assertLessEqual(len(line.encode()) + 2, 512)
            self.assertNotIn(" LS * ", line)
            offered = line.split(" :", 1)[1].split()
            self.assertEqual(offered, list(SUPPORTED_CAPS))

    def test_302_lines_are_full_and_marked(self) -> None:
        harness = Harness()
        client = harness.connect()
        client.send("CAP LS 302")
        lines = client.lines()
        self.assertGreater(len(lines), 1)
        self.assertTrue(all(len(line.encode()) + 2 <= 512 for line in lines))
        self.assertTrue(all(" LS * :" in line for line in lines[:-1]))
        self.assertNotIn(" LS * ", lines[-1])
        client.send("NICK somewhatlongnickname", "USER u 0 * :U", "CAP END")
        client.raw()
        client.send("CAP LIST")
        self.assertEqual(len(client.lines()), 1)
