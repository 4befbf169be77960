"""Tests for NickServ, nick protection and ChanServ."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chat import numerics
from chat.config import Timeouts
from tests.accounts_support import (
    PASSWORD,
    account_harness,
    make_account,
    plain,
    sasl_connect,
)
from tests.support import FakeClient


def notices(client: FakeClient, service: str = "NickServ") -> list[str]:
    """The text of the notices *service* sent since the last read."""
    return [
        m.params[1]
        for m in client.messages()
        if m.command == "NOTICE" and (m.source or "").startswith(service + "!")
    ]


class NickServTests(TestCase):
    def setUp(self) -> None:
        self.harness = account_harness()

    def test_privmsg_goes_to_the_service_not_to_a_user(self) -> None:
        client = self.harness.register("alice")
        client.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
        lines = client.lines()
        self.assertTrue(
            any(":NickServ!NickServ@irc.test NOTICE alice :" in line for line in lines),
            lines,
        )
        self.assertEqual(client.conn.account, "alice")
        self.assertIn(numerics.RPL_LOGGEDIN, [line.split()[1] for line in lines])

    def test_notice_and_tagmsg_to_a_service_are_dropped(self) -> None:
        client = self.harness.register("alice")
        client.send(f"NOTICE NickServ :REGISTER {PASSWORD}", "TAGMSG NickServ")
        self.assertEqual(client.lines(), [])
        self.assertIsNone(client.conn.account)

    def test_service_nicks_are_reserved(self) -> None:
        client = self.harness.register("alice")
        client.send("NICK nickserv", "NICK ChanServ")
        self.assertEqual(
            client.commands(), [numerics.ERR_NICKNAMEINUSE, numerics.ERR_NICKNAMEINUSE]
        )

    def test_register_identify_and_info(self) -> None:
        alice = self.harness.register("alice")
        alice.send(f"NS REGISTER {PASSWORD} alice@example.org")
        self.assertEqual(alice.conn.account, "alice")
        alice.raw()
        alice.send(f"NS REGISTER {PASSWORD}")
        self.assertIn("already logged in", notices(alice)[0])
        other = self.harness.register("other")
        other.send(f"NICKSERV IDENTIFY alice {PASSWORD}")
        self.assertEqual(other.conn.account, "alice")
        self.assertIn("logged in as alice", notices(other)[-1])
        bob = self.harness.register("bob")
        bob.send("NS INFO alice")
        info = notices(bob)
        self.assertIn("Account alice, registered", info[0])
        self.assertFalse(any("example.org" in line for line in info), "private")
        alice.send("NS INFO")
        self.assertIn("E-mail: alice@example.org", notices(alice))
        bob.send("NS INFO nobody")
        self.assertEqual(notices(bob), ["nobody is not registered"])

    def test_login_and_logout_reach_account_notify_peers(self) -> None:
        bob = self.harness.register("bob")
        bob.send("CAP REQ account-notify")
        alice = self.harness.register("alice")
        for client in (alice, bob):
            client.send("JOIN #c")
        bob.raw()
        alice.send(f"NS REGISTER {PASSWORD}")
        self.assertEqual(bob.lines(), [":alice!~alice@127.0.0.1 ACCOUNT alice"])
        alice.send(f"NS DROP {PASSWORD}")
        self.assertEqual(bob.lines(), [":alice!~alice@127.0.0.1 ACCOUNT *"])

    def test_identify_failures(self) -> None:
        make_account(self.harness, "alice")
        client = self.harness.register("bob")
        client.send("NS IDENTIFY alice wrong-password")
        self.assertEqual(notices(client), ["Invalid account or password"])
        for _ in range(5):
            client.send("NS IDENTIFY alice wrong-password")
        client.raw()
        client.send(f"NS IDENTIFY alice {PASSWORD}")
        self.assertEqual(notices(client), ["Too many failed logins; wait"])
        self.assertIsNone(client.conn.account)

    def test_register_taken_and_weak(self) -> None:
        make_account(self.harness, "alice")
        client = self.harness.register("alice")
        client.raw()
        client.send("NS REGISTER short")
        self.assertIn("at least", notices(client)[0])
        client.send(f"NS REGISTER {PASSWORD} nowhere")
        self.assertEqual(notices(client), ["nowhere is not an e-mail address"])
        client.send(f"NS REGISTER {PASSWORD}")
        self.assertEqual(notices(client), ["alice is already registered"])

    def test_set_password(self) -> None:
        client = self.harness.register("alice")
        client.send(f"NS REGISTER {PASSWORD}")
        client.raw()
        client.send("NS SET PASSWORD brand-new-secret")
        self.assertEqual(notices(client), ["Password changed"])
        other = sasl_connect(self.harness, "x")
        other.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', PASSWORD)}")
        self.assertEqual(other.commands()[-1], numerics.ERR_SASLFAIL)
        other.send(
            "AUTHENTICATE PLAIN",
            f"AUTHENTICATE {plain('alice', 'brand-new-secret')}",
        )
        self.assertEqual(other.commands()[-1], numerics.RPL_SASLSUCCESS)

    def test_set_password_needs_login(self) -> None:
        client = self.harness.register("alice")
        client.send("NS SET PASSWORD brand-new-secret")
        self.assertEqual(notices(client), ["You are not logged in"])

    def test_drop(self) -> None:
        alice = self.harness.register("alice")
        alice.send(f"NS REGISTER {PASSWORD}")
        alice.raw()
        alice.send("NS DROP wrong-password")
        self.assertEqual(notices(alice), ["Wrong password"])
        alice.send(f"NS DROP {PASSWORD}")
        lines = alice.messages()
        self.assertIn(numerics.RPL_LOGGEDOUT, [m.command for m in lines])
        self.assertIsNone(alice.conn.account)
        stored = []
        self.harness.server.accounts.store.get_account("alice").addCallback(
            stored.append
        )
        self.assertEqual(stored, [None])

    def test_ghost(self) -> None:
        make_account(self.harness, "alice")
        ghost = self.harness.register("alice")
        me = self.harness.register("alice2")
        me.send("NS GHOST alice")
        self.assertEqual(notices(me), ["You are not logged in to alice"])
        me.send("NS GHOST alice wrong-password")
        self.assertEqual(notices(me), ["Invalid account or password"])
        self.assertFalse(ghost.disconnected)
        me.send(f"NS GHOST alice {PASSWORD}")
        self.assertEqual(notices(me), ["alice has been disconnected"])
        self.assertTrue(ghost.disconnected)
        self.assertIn("Ghosted by alice2", ghost.lines()[-1])
        me.send("NICK alice")
        self.assertEqual(me.conn.nick, "alice")

    def test_ghost_when_logged_in(self) -> None:
        make_account(self.harness, "alice")
        ghost = self.harness.register("alice")
        me = self.harness.register("alice2")
        me.send(f"NS IDENTIFY alice {PASSWORD}")
        me.send("NS GHOST alice")
        self.assertTrue(ghost.disconnected)
        me.send("NS GHOST nobody")
        self.assertEqual(notices(me)[-1], "nobody is not online")

    def test_help_and_unknown(self) -> None:
        client = self.harness.register("alice")
        client.send("NS HELP")
        self.assertTrue(any(line.startswith("GHOST") for line in notices(client)))
        client.send("NS FROB")
        self.assertIn("Unknown command FROB", notices(client)[0])
        client.send("PRIVMSG NickServ :   ")
        self.assertEqual(notices(client), ["Try /msg NickServ HELP"])

    def test_cert_list_add_del(self) -> None:
        client = self.harness.register("alice")
        client.send("NS CERT LIST")
        self.assertEqual(notices(client), ["You are not logged in"])
        client.send(f"NS REGISTER {PASSWORD}")
        client.raw()
        client.send("NS CERT ADD")
        self.assertIn("no TLS client certificate", notices(client)[0])
        client.send("NS CERT ADD AB:CD:EF")
        self.assertEqual(notices(client), ["Added abcdef"])
        client.send("NS CERT LIST")
        self.assertEqual(notices(client), ["Certificate: abcdef", "1 certificate(s)"])
        client.send("NS CERT DEL abcdef", "NS CERT DEL abcdef")
        self.assertEqual(
            notices(client),
            ["Removed abcdef", "That certificate is not on your account"],
        )


class NickProtectionTests(TestCase):
    def setUp(self) -> None:
        self.harness = account_harness(timeouts=Timeouts(nick_grace=30.0))
        make_account(self.harness, "alice")

    def test_unidentified_user_is_renamed_after_the_grace(self) -> None:
        bob = self.harness.register("bob")
        client = self.harness.connect()
        client.send("NICK alice", "USER alice 0 * :A")
        warning = notices(client)
        self.assertIn("The nick alice is registered", warning[0])
        self.assertIn("within 30 seconds", warning[0])
        bob.send("JOIN #c")
        client.send("JOIN #c")
        bob.raw()
        self.harness.clock.advance(29)
        self.assertEqual(client.conn.nick, "alice")
        self.harness.clock.advance(1)
        self.assertTrue(client.conn.nick.startswith("Guest"))
        guest = client.conn.nick
        self.assertIn(f":alice!~alice@127.0.0.1 NICK {guest}", bob.lines())
        self.assertIsNone(self.harness.server.find_user("alice"))

    def test_identifying_in_time_keeps_the_nick(self) -> None:
        client = self.harness.register("alice")
        self.harness.clock.advance(10)
        client.send(f"NS IDENTIFY {PASSWORD}")
        self.harness.clock.advance(60)
        self.assertEqual(client.conn.nick, "alice")

    def test_sasl_before_registration_never_warns(self) -> None:
        client = sasl_connect(self.harness, "alice")
        client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', PASSWORD)}")
        client.send("CAP END")
        self.assertEqual(notices(client), [])
        self.harness.clock.advance(60)
        self.assertEqual(client.conn.nick, "alice")
        self.assertEqual(
            self.harness.clock.getDelayedCalls()[0].func.__name__, "_keepalive"
        )

    def test_nick_change_to_a_registered_nick(self) -> None:
        client = self.harness.register("bob")
        client.send("NICK alice")
        self.assertEqual(client.conn.nick, "alice")
        self.harness.clock.advance(30)
        self.assertTrue(client.conn.nick.startswith("Guest"))

    def test_leaving_the_nick_cancels(self) -> None:
        client = self.harness.register("alice")
        client.send("NICK bob")
        self.harness.clock.advance(30)
        self.assertEqual(client.conn.nick, "bob")
        self.assertEqual(
            [c.func.__name__ for c in self.harness.clock.getDelayedCalls()],
            ["_keepalive"],
        )

    def test_quitting_cancels(self) -> None:
        client = self.harness.register("alice")
        client.send("QUIT")
        self.assertEqual(
            [
                c
                for c in self.harness.clock.getDelayedCalls()
                if c.func.__name__ == "_expire"
            ],
            [],
        )

    def test_logged_in_to_another_account_is_not_enough(self) -> None:
        make_account(self.harness, "bob")
        client = sasl_connect(self.harness, "alice")
        client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('bob', PASSWORD)}")
        client.send("CAP END")
        self.harness.clock.advance(30)
        self.assertTrue(client.conn.nick.startswith("Guest"))

    def test_unregistered_nick_is_free(self) -> None:
        client = self.harness.connect()
        client.send("NICK carol", "USER carol 0 * :C")
        self.assertTrue(client.conn.registered)
        self.assertEqual(notices(client), [])
        self.harness.clock.advance(60)
        self.assertEqual(client.conn.nick, "carol")


class ChanServTests(TestCase):
    def setUp(self) -> None:
        self.harness = account_harness()
        self.alice = self.harness.register("alice")
        self.alice.send(f"NS REGISTER {PASSWORD}", "JOIN #chat", "TOPIC #chat :Welcome")
        self.alice.send("MODE #chat +m")
        self.alice.raw()

    def register_channel(self) -> list[str]:
        self.alice.send("CS REGISTER #chat")
        return notices(self.alice, "ChanServ")

    def test_register(self) -> None:
        self.assertEqual(self.register_channel(), ["#chat is registered to alice"])
        self.alice.send("CS REGISTER #chat")
        self.assertEqual(
            notices(self.alice, "ChanServ"), ["#chat is already registered"]
        )
        self.alice.send("CS INFO #chat")
        self.assertEqual(
            notices(self.alice, "ChanServ"), ["#chat: founder alice", "Topic: Welcome"]
        )

    def test_register_needs_login_and_ops(self) -> None:
        bob = self.harness.register("bob")
        bob.send("JOIN #chat", "CS REGISTER #chat")
        self.assertIn("Log in", notices(bob, "ChanServ")[0])
        bob.send(f"NS REGISTER {PASSWORD}", "CS REGISTER #chat")
        self.assertIn("must be an operator", notices(bob, "ChanServ")[0])
        bob.send("CS REGISTER #nowhere")
        self.assertIn("must be an operator", notices(bob, "ChanServ")[0])

    def test_state_comes_back_when_the_channel_is_recreated(self) -> None:
        self.register_channel()
        self.alice.send("PART #chat")
        self.assertIsNone(self.harness.server.find_channel("#chat"))
        bob = self.harness.register("bob")
        bob.send("JOIN #chat")
        channel = self.harness.server.find_channel("#chat")
        assert channel is not None
        self.assertEqual(channel.topic, "Welcome")
        self.assertEqual(channel.flags, {"m", "n", "t"})
        self.assertIn(":irc.test 332 bob #chat Welcome", bob.lines())

    def test_founder_gets_ops_on_join(self) -> None:
        self.register_channel()
        self.alice.send("PART #chat")
        bob = self.harness.register("bob")
        bob.send("JOIN #chat")
        bob.raw()
        self.alice.send("JOIN #chat")
        channel = self.harness.server.find_channel("#chat")
        assert channel is not None
        self.assertTrue(channel.is_operator(self.alice.conn))
        self.assertIn(":ChanServ!ChanServ@irc.test MODE #chat +o alice", bob.lines())

    def test_founder_gets_ops_on_logging_in(self) -> None:
        self.register_channel()
        self.alice.send("PART #chat")
        bob = self.harness.register("bob")
        bob.send("JOIN #chat")
        alice = self.harness.register("alice2")
        alice.send("JOIN #chat")
        bob.raw()
        alice.send(f"NS IDENTIFY alice {PASSWORD}")
        channel = self.harness.server.find_channel("#chat")
        assert channel is not None
        self.assertTrue(channel.is_operator(alice.conn))
        self.assertIn(":ChanServ!ChanServ@irc.test MODE #chat +o alice2", bob.lines())

    def test_op_list(self) -> None:
        self.register_channel()
        bob = self.harness.register("bob")
        bob.send(f"NS REGISTER {PASSWORD}")
        bob.send("CS OP #chat alice")
        self.assertEqual(notices(bob, "ChanServ"), ["You are not the founder of #chat"])
        self.alice.send("CS OP #chat nobody")
        self.assertEqual(notices(self.alice, "ChanServ"), ["nobody is not registered"])
        self.alice.send("CS OP #chat BOB")
        self.assertEqual(
            notices(self.alice, "ChanServ"), ["bob is an operator of #chat"]
        )
        bob.send("JOIN #chat")
        channel = self.harness.server.find_channel("#chat")
        assert channel is not None
        self.assertTrue(channel.is_operator(bob.conn))
        self.alice.send("CS DEOP #chat bob")
        self.assertEqual(notices(self.alice, "ChanServ"), ["bob removed from #chat"])
        record = self.harness.server.services.chanserv.registered["#chat"]
        self.assertEqual(record.operators, ())

    def test_changes_persist(self) -> None:
        self.register_channel()
        self.alice.send("TOPIC #chat :Changed", "MODE #chat -m+l 5")
        stored: list[object] = []
        self.harness.server.accounts.store.list_channels().addCallback(stored.append)
        [record] = stored[0]  # type: ignore[misc]
        self.assertEqual(
            (record.topic, record.topic_set_by, record.modes, record.limit),
            ("Changed", "alice", "nt", 5),
        )

    def test_drop(self) -> None:
        self.register_channel()
        bob = self.harness.register("bob")
        bob.send("CS DROP #chat")
        self.assertEqual(notices(bob, "ChanServ"), ["You are not the founder of #chat"])
        self.alice.send("CS DROP #chat")
        self.assertEqual(
            notices(self.alice, "ChanServ"), ["#chat is no longer registered"]
        )
        self.alice.send("CS INFO #chat")
        self.assertEqual(notices(self.alice, "ChanServ"), ["#chat is not registered"])

    def test_dropping_the_founder_account_drops_the_channel(self) -> None:
        self.register_channel()
        self.alice.send(f"NS DROP {PASSWORD}")
        self.assertEqual(self.harness.server.services.chanserv.registered, {})
