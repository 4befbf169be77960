"""Tests for registration: CAP, PASS, NICK, USER, PING, QUIT and timeouts."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chat import numerics
from chat.config import Timeouts
from tests.support import Harness


class RegistrationTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()

    def test_welcome_burst(self) -> None:
        client = self.harness.connect()
        client.send("NICK alice", "USER alice 0 * :Alice A")
        messages = client.messages()
        commands = [m.command for m in messages]
        self.assertEqual(commands[:4], ["001", "002", "003", "004"])
        self.assertIn("005", commands)
        self.assertIn(numerics.RPL_LUSERCLIENT, commands)
        self.assertEqual(commands[-1], numerics.RPL_ENDOFMOTD)
        welcome = messages[0]
        self.assertEqual(welcome.source, "irc.test")
        self.assertEqual(welcome.params[0], "alice")
        self.assertIn("alice!~alice@127.0.0.1", welcome.params[1])
        tokens = [p for m in messages if m.command == "005" for p in m.params[1:-1]]
        for token in (
            "CASEMAPPING=rfc1459",
            "NETWORK=TestNet",
            "UTF8ONLY",
            "PREFIX=(ov)@+",
        ):
            self.assertIn(token, tokens)

    def test_no_motd(self) -> None:
        self.harness.server.motd = None
        client = self.harness.connect()
        client.send("USER a 0 * :A", "NICK a")
        self.assertEqual(client.commands()[-1], numerics.ERR_NOMOTD)

    def test_commands_before_registration(self) -> None:
        client = self.harness.connect()
        client.send("JOIN #a")
        self.assertEqual(client.commands(), [numerics.ERR_NOTREGISTERED])

    def test_nick_errors(self) -> None:
        self.harness.register("taken")
        client = self.harness.connect()
        client.send("NICK", "NICK 1bad", "NICK TAKEN", "NICK " + "x" * 31)
        self.assertEqual(
            client.commands(),
            [
                numerics.ERR_NONICKNAMEGIVEN,
                numerics.ERR_ERRONEUSNICKNAME,
                numerics.ERR_NICKNAMEINUSE,
                numerics.ERR_ERRONEUSNICKNAME,
            ],
        )

    def test_nick_collision_uses_casemapping(self) -> None:
        self.harness.register("a[b]")
        client = self.harness.connect()
        client.send("NICK A{B}")
        self.assertEqual(client.commands(), [numerics.ERR_NICKNAMEINUSE])

    def test_nick_change_is_seen_by_channel_peers(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        alice.send("NICK alicia")
        self.assertEqual(alice.lines(), [":alice!~alice@127.0.0.1 NICK alicia"])
        self.assertEqual(bob.lines(), [":alice!~alice@127.0.0.1 NICK alicia"])
        self.assertIs(self.harness.server.find_user("ALICIA"), alice.conn)
        self.assertIsNone(self.harness.server.find_user("alice"))

    def test_reregister_refused(self) -> None:
        client = self.harness.register("alice")
        client.send("USER x 0 * :x", "PASS secret")
        self.assertEqual(
            client.commands(),
            [numerics.ERR_ALREADYREGISTERED, numerics.ERR_ALREADYREGISTERED],
        )

    def test_user_needs_params(self) -> None:
        client = self.harness.connect()
        client.send("USER a b")
        self.assertEqual(
            client.lines(), [":irc.test 461 * USER :Not enough parameters"]
        )

    def test_empty_username_or_realname_is_refused(self) -> None:
        client = self.harness.connect()
        client.send("NICK foo", "USER u * * :", "USER : * * :Real")
        self.assertEqual(
            client.lines(),
            [":irc.test 461 foo USER :Not enough parameters"] * 2,
        )
        self.assertFalse(client.conn.registered)

    def test_username_without_allowed_characters_is_replaced(self) -> None:
        client = self.harness.connect()
        client.send("NICK foo", "USER \U0001f60a\U0001f60a * * :realname")
        self.assertTrue(client.conn.registered)
        self.assertEqual(client.conn.username, "~user")
        self.assertEqual(client.conn.realname, "realname")

    def test_ping(self) -> None:
        client = self.harness.connect()
        client.send("PING :token here")
        self.assertEqual(client.lines(), [":irc.test PONG irc.test :token here"])

    def test_quit(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        alice.send("QUIT :bye now")
        self.assertTrue(alice.disconnected)
        self.assertEqual(
            alice.lines(), ["ERROR :Closing Link: 127.0.0.1 (Quit: bye now)"]
        )
        self.assertEqual(bob.lines(), [":alice!~alice@127.0.0.1 QUIT :Quit: bye now"])
        self.assertIsNone(self.harness.server.find_user("alice"))
        self.assertEqual(self.harness.server.registered_count, 1)


class PasswordTests(TestCase):
    def test_correct_password(self) -> None:
        harness = Harness(password="sesame")
        client = harness.connect()
        client.send("PASS sesame", "NICK a", "USER a 0 * :A")
        self.assertTrue(client.conn.registered)

    def test_wrong_or_missing_password(self) -> None:
        harness = Harness(password="sesame")
        for lines in (["PASS nope"], []):
            client = harness.connect()
            client.send(*lines, "NICK a", "USER a 0 * :A")
            self.assertFalse(client.conn.registered)
            self.assertEqual(client.commands()[0], numerics.ERR_PASSWDMISMATCH)
            self.assertTrue(client.disconnected)


class CapabilityTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()

    def test_negotiation_holds_registration(self) -> None:
        client = self.harness.connect()
        client.send("CAP LS 302", "NICK a", "USER a 0 * :A")
        ls = client.messages()
        self.assertEqual(ls[0].command, "CAP")
        self.assertEqual(ls[0].params[:2], ("*", "LS"))
        # CAP LS 302 takes several lines ("*" before all but the last).
        offered = [
            cap for m in ls if m.command == "CAP" for cap in m.params[-1].split()
        ]
        self.assertEqual(ls[0].params[2], "*")
        self.assertIn("server-time", offered)
        self.assertFalse(client.conn.registered)
        client.send("CAP REQ :server-time multi-prefix")
        self.assertEqual(
            client.lines(), [":irc.test CAP a ACK :server-time multi-prefix"]
        )
        client.send("CAP END")
        self.assertTrue(client.conn.registered)
        self.assertEqual(
            client.conn.caps, {"cap-notify", "server-time", "multi-prefix"}
        )

    def test_unknown_cap_naks_whole_request(self) -> None:
        client = self.harness.connect()
        client.send("CAP REQ :server-time bogus")
        self.assertEqual(client.lines(), [":irc.test CAP * NAK :server-time bogus"])
        self.assertEqual(client.conn.caps, set())

    def test_list_and_disable(self) -> None:
        client = self.harness.register("a")
        client.send("CAP REQ echo-message", "CAP REQ -echo-message", "CAP LIST")
        self.assertEqual(client.lines()[-1], ":irc.test CAP a LIST :")

    def test_invalid_subcommand(self) -> None:
        client = self.harness.connect()
        client.send("CAP FOO")
        self.assertEqual(client.commands(), [numerics.ERR_INVALIDCAPCMD])

    def test_server_time_tags_relayed_messages(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        bob.send("CAP REQ server-time")
        bob.raw()
        self.harness.clock.advance(1.5)
        alice.send("PRIVMSG #chan :hi")
        message = bob.messages()[0]
        self.assertEqual(message.tags["time"], "1970-01-01T00:00:01.500Z")


class TimeoutTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness(
            timeouts=Timeouts(registration=10, ping_interval=30, ping_timeout=20)
        )

    def test_registration_timeout(self) -> None:
        client = self.harness.connect()
        client.send("NICK a")
        self.harness.clock.advance(9)
        self.assertFalse(client.disconnected)
        self.harness.clock.advance(1)
        self.assertTrue(client.disconnected)
        self.assertIn("Registration timed out", client.lines()[-1])

    def test_idle_client_is_pinged_then_closed(self) -> None:
        client = self.harness.register("a")
        self.harness.clock.advance(30)
        self.assertEqual(client.lines(), ["PING irc.test"])
        self.harness.clock.advance(19)
        self.assertFalse(client.disconnected)
        self.harness.clock.advance(1)
        self.assertTrue(client.disconnected)
        self.assertIn("Ping timeout", client.lines()[-1])

    def test_answering_client_stays(self) -> None:
        client = self.harness.register("a")
        for _ in range(5):
            self.harness.clock.advance(30)
            self.assertEqual(client.lines(), ["PING irc.test"])
            client.send("PONG irc.test")
        self.assertFalse(client.disconnected)

    def test_active_client_is_not_pinged(self) -> None:
        client = self.harness.register("a")
        for _ in range(10):
            self.harness.clock.advance(10)
            client.send("PING x")
        self.assertNotIn("PING irc.test", client.lines())


class LusersTests(TestCase):
    def test_counts_follow_modes_and_departures(self) -> None:
        harness = Harness()
        alice = harness.register("alice")
        bob = harness.register("bob")
        harness.register("carol")
        alice.send("MODE alice +i")
        bob.send("MODE bob +i")
        bob.conn.server.set_user_mode(bob.conn, "o", True)
        alice.raw()
        alice.send("LUSERS")
        lines = alice.lines()
        self.assertIn(
            ":irc.test 251 alice :There are 1 users and 2 invisible on 1 servers",
            lines,
        )
        self.assertIn(":irc.test 252 alice 1 :operator(s) online", lines)
        bob.send("QUIT")
        alice.send("MODE alice -i", "LUSERS")
        lines = alice.lines()
        self.assertIn(
            ":irc.test 251 alice :There are 2 users and 0 invisible on 1 servers",
            lines,
        )
        self.assertIn(":irc.test 252 alice 0 :operator(s) online", lines)
