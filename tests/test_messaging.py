"""Tests for PRIVMSG and NOTICE."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chat import numerics
from tests.support import Harness


class PrivmsgTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()

    def test_channel_message_reaches_everyone_else_once(self) -> None:
        alice, bob, carol = self.harness.channel_of("alice", "bob", "carol")
        alice.send("PRIVMSG #chan :hello all")
        expected = [":alice!~alice@127.0.0.1 PRIVMSG #chan :hello all"]
        self.assertEqual(bob.lines(), expected)
        self.assertEqual(carol.lines(), expected)
        self.assertEqual(alice.lines(), [])

    def test_same_bytes_object_for_every_recipient(self) -> None:
        alice, bob, carol = self.harness.channel_of("alice", "bob", "carol")
        written: list[bytes] = []
        for client in (bob, carol):
            client.conn.transmit = written.append  # type: ignore[method-assign]
        alice.send("PRIVMSG #chan :shared")
        self.assertEqual(len(written), 2)
        self.assertIs(written[0], written[1])

    def test_private_message(self) -> None:
        alice = self.harness.register("alice")
        bob = self.harness.register("bob")
        alice.send("PRIVMSG BOB :psst")
        self.assertEqual(bob.lines(), [":alice!~alice@127.0.0.1 PRIVMSG bob :psst"])

    def test_several_targets(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        carol = self.harness.register("carol")
        alice.send("PRIVMSG #chan,carol,#chan :x")
        self.assertEqual(len(bob.lines()), 1)
        self.assertEqual(len(carol.lines()), 1)

    def test_too_many_targets(self) -> None:
        alice = self.harness.register("alice")
        alice.send("PRIVMSG a,b,c,d,e :x")
        self.assertEqual(alice.commands(), [numerics.ERR_TOOMANYTARGETS])

    def test_errors(self) -> None:
        alice = self.harness.register("alice")
        alice.send(
            "PRIVMSG",
            "PRIVMSG bob",
            "PRIVMSG bob :",
            "PRIVMSG nobody :x",
            "PRIVMSG #nowhere :x",
        )
        self.assertEqual(
            alice.commands(),
            [
                numerics.ERR_NORECIPIENT,
                numerics.ERR_NOTEXTTOSEND,
                numerics.ERR_NOTEXTTOSEND,
                numerics.ERR_NOSUCHNICK,
                numerics.ERR_NOSUCHCHANNEL,
            ],
        )

    def test_no_external_messages(self) -> None:
        (alice,) = self.harness.channel_of("alice")
        bob = self.harness.register("bob")
        bob.send("PRIVMSG #chan :from outside")
        self.assertEqual(bob.commands(), [numerics.ERR_CANNOTSENDTOCHAN])
        self.assertEqual(alice.lines(), [])
        self.harness.server.find_channel("#chan").flags.discard("n")  # type: ignore[union-attr]
        bob.send("PRIVMSG #chan :from outside")
        self.assertEqual(len(alice.lines()), 1)

    def test_moderated_channel(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        channel = self.harness.server.find_channel("#chan")
        assert channel is not None
        channel.flags.add("m")
        bob.send("PRIVMSG #chan :quiet?")
        self.assertEqual(bob.commands(), [numerics.ERR_CANNOTSENDTOCHAN])
        channel.set_member_mode(bob.conn, "v", True)
        bob.send("PRIVMSG #chan :voiced")
        self.assertEqual(len(alice.lines()), 1)

    def test_status_message_goes_to_ops_only(self) -> None:
        alice, bob, carol = self.harness.channel_of("alice", "bob", "carol")
        channel = self.harness.server.find_channel("#chan")
        assert channel is not None
        channel.set_member_mode(carol.conn, "o", True)
        bob.send("PRIVMSG @#chan :ops only")
        self.assertEqual(
            alice.lines(), [":bob!~bob@127.0.0.1 PRIVMSG @#chan :ops only"]
        )
        self.assertEqual(len(carol.lines()), 1)
        self.assertEqual(bob.lines(), [])

    def test_away_reply(self) -> None:
        alice = self.harness.register("alice")
        bob = self.harness.register("bob")
        bob.conn.away = "gone fishing"
        alice.send("PRIVMSG bob :hi", "NOTICE bob :hi")
        self.assertEqual(alice.lines(), [":irc.test 301 alice bob :gone fishing"])

    def test_echo_message(self) -> None:
        alice, _bob = self.harness.channel_of("alice", "bob")
        alice.send("CAP REQ echo-message")
        alice.raw()
        alice.send("PRIVMSG #chan :echo", "PRIVMSG bob :direct")
        self.assertEqual(
            alice.lines(),
            [
                ":alice!~alice@127.0.0.1 PRIVMSG #chan :echo",
                ":alice!~alice@127.0.0.1 PRIVMSG bob :direct",
            ],
        )

    def test_idle_time_updated(self) -> None:
        alice = self.harness.register("alice")
        self.harness.clock.advance(42)
        alice.send("PRIVMSG alice :self")
        self.assertEqual(alice.conn.last_message, 42)


class NoticeTests(TestCase):
    def test_notice_never_answers_with_errors(self) -> None:
        harness = Harness()
        alice = harness.register("alice")
        alice.send("NOTICE", "NOTICE x", "NOTICE nobody :x", "NOTICE #none :x")
        self.assertEqual(alice.lines(), [])

    def test_notice_delivered(self) -> None:
        harness = Harness()
        alice, bob = harness.channel_of("alice", "bob")
        alice.send("NOTICE #chan :note")
        self.assertEqual(bob.lines(), [":alice!~alice@127.0.0.1 NOTICE #chan :note"])
