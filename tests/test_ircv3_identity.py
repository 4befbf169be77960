"""setname, chghost, account-notify, extended-join, invite-notify, caps."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chat import numerics
from chat.commands.capabilities import SUPPORTED_CAPS
from chat.commands.ircv3 import NAME_LENGTH, join_relay, notify_invite
from chat.identity import account_changed
from chat.message import Message
from chat.router import Audience
from tests.ircv3_support import with_caps
from tests.support import Harness


class SetnameTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.alice, self.bob, self.carol = self.harness.channel_of(
            "alice", "bob", "carol"
        )

    def test_setname_goes_to_setname_clients(self) -> None:
        with_caps(self.alice, "setname")
        with_caps(self.bob, "setname")
        self.alice.send("SETNAME :Alice Liddell")
        expected = [":alice!~alice@127.0.0.1 SETNAME :Alice Liddell"]
        self.assertEqual(self.alice.lines(), expected)
        self.assertEqual(self.bob.lines(), expected)
        self.assertEqual(self.carol.lines(), [])
        self.assertEqual(self.alice.conn.realname, "Alice Liddell")

    def test_invalid_realname(self) -> None:
        self.alice.send("SETNAME :" + "x" * (NAME_LENGTH + 1), "SETNAME :")
        self.assertEqual(
            self.alice.lines(),
            [":irc.test FAIL SETNAME INVALID_REALNAME :Realname is not valid"] * 2,
        )


class ChghostTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.oper, self.bob, self.carol = self.harness.channel_of(
            "oper", "bob", "carol"
        )
        self.oper.conn.modes.add("o")
        with_caps(self.bob, "chghost")

    def test_chghost_and_quit_join_for_the_others(self) -> None:
        self.oper.send("CHGHOST carol ~cat cheshire.example")
        self.assertEqual(
            self.bob.lines(),
            [":carol!~carol@127.0.0.1 CHGHOST ~cat cheshire.example"],
        )
        self.assertEqual(
            self.oper.lines(),
            [
                ":carol!~carol@127.0.0.1 QUIT :Changing host",
                ":carol!~cat@cheshire.example JOIN #chan",
                ":irc.test NOTICE oper :Changed the host of carol to"
                " ~cat@cheshire.example",
            ],
        )
        self.assertEqual(self.carol.conn.hostmask, "carol!~cat@cheshire.example")

    def test_standard_replies_client_gets_a_note(self) -> None:
        with_caps(self.oper, "standard-replies")
        self.oper.send("CHGHOST bob ~b b.example")
        self.assertEqual(
            self.oper.lines()[-1],
            ":irc.test NOTE CHGHOST HOST_CHANGED bob"
            " :Changed the host of bob to ~b@b.example",
        )

    def test_channel_status_is_restored(self) -> None:
        self.oper.send("CHGHOST oper ~o op.example")
        self.assertEqual(
            self.carol.lines(),
            [
                ":oper!~oper@127.0.0.1 QUIT :Changing host",
                ":oper!~o@op.example JOIN #chan",
                ":irc.test MODE #chan +o oper",
            ],
        )

    def test_refusals(self) -> None:
        self.bob.send("CHGHOST carol a b")
        self.assertEqual(self.bob.commands(), [numerics.ERR_NOPRIVILEGES])
        self.oper.send("CHGHOST nobody a b", "CHGHOST carol a b@d")
        messages = self.oper.messages()
        self.assertEqual(messages[0].command, numerics.ERR_NOSUCHNICK)
        self.assertEqual(messages[1].params[:2], ("CHGHOST", "INVALID_HOST"))


class NotificationTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.alice, self.bob, self.carol = self.harness.channel_of(
            "alice", "bob", "carol"
        )
        self.server = self.harness.server

    def test_account_notify(self) -> None:
        with_caps(self.bob, "account-notify")
        self.alice.conn.account = "alice"  # type: ignore[attr-defined]
        account_changed(self.server, self.alice.conn)
        self.alice.conn.account = None  # type: ignore[attr-defined]
        account_changed(self.server, self.alice.conn)
        self.assertEqual(
            self.bob.lines(),
            [
                ":alice!~alice@127.0.0.1 ACCOUNT alice",
                ":alice!~alice@127.0.0.1 ACCOUNT *",
            ],
        )
        self.assertEqual(self.carol.lines(), [])

    def test_extended_join(self) -> None:
        with_caps(self.bob, "extended-join")
        dave = self.harness.register("dave")
        dave.conn.account = "dave"  # type: ignore[attr-defined]
        channel = self.server.channels["#chan"]
        relay = join_relay(self.server, dave.conn, channel)
        self.server.router.publish(relay, Audience.to(self.bob.conn, self.carol.conn))
        self.assertEqual(
            self.bob.lines(), [":dave!~dave@127.0.0.1 JOIN #chan dave :dave Real"]
        )
        self.assertEqual(self.carol.lines(), [":dave!~dave@127.0.0.1 JOIN #chan"])
        dave.conn.account = None  # type: ignore[attr-defined]
        relay = join_relay(self.server, dave.conn, channel)
        self.server.router.publish(relay, Audience.to(self.bob.conn))
        self.assertEqual(
            self.bob.lines(), [":dave!~dave@127.0.0.1 JOIN #chan * :dave Real"]
        )

    def test_invite_notify_goes_to_operators_with_the_capability(self) -> None:
        self.alice.send("MODE #chan +o bob")
        for client in (self.alice, self.bob, self.carol):
            client.raw()
        with_caps(self.bob, "invite-notify")
        with_caps(self.carol, "invite-notify")
        dave = self.harness.register("dave")
        channel = self.server.channels["#chan"]
        relay = self.server.relay(
            Message("INVITE", ("dave", "#chan"), self.alice.conn.hostmask)
        )
        notify_invite(self.server, relay, channel, self.alice.conn, dave.conn)
        self.assertEqual(
            self.bob.lines(), [":alice!~alice@127.0.0.1 INVITE dave #chan"]
        )
        self.assertEqual(self.carol.lines(), [], "not an operator")
        self.assertEqual(self.alice.lines(), [])

    def test_away_notify(self) -> None:
        with_caps(self.bob, "away-notify")
        self.alice.send("AWAY :lunch")
        self.assertEqual(self.bob.lines(), [":alice!~alice@127.0.0.1 AWAY :lunch"])
        self.assertEqual(self.carol.lines(), [])

    def test_away_notify_when_an_away_user_joins(self) -> None:
        with_caps(self.bob, "away-notify")
        dave = self.harness.register("dave")
        dave.send("AWAY :lunch")
        dave.send("JOIN #chan")
        self.assertEqual(
            self.bob.lines(),
            [
                ":dave!~dave@127.0.0.1 JOIN #chan",
                ":dave!~dave@127.0.0.1 AWAY :lunch",
            ],
        )
        self.assertEqual(
            [line for line in self.carol.lines() if " AWAY " in line], [], "no cap"
        )


class NamesCapabilityTests(TestCase):
    def test_multi_prefix_and_userhost_in_names(self) -> None:
        harness = Harness()
        alice, bob = harness.channel_of("alice", "bob")
        alice.send("MODE #chan +v alice")
        with_caps(bob, "multi-prefix", "userhost-in-names")
        bob.send("NAMES #chan")
        names = bob.messages()[0].params[-1].split()
        self.assertEqual(names, ["@+alice!~alice@127.0.0.1", "bob!~bob@127.0.0.1"])
        with_caps(bob, "-multi-prefix", "-userhost-in-names")
        bob.send("NAMES #chan")
        self.assertEqual(bob.messages()[0].params[-1].split(), ["@alice", "bob"])


class CapabilityTests(TestCase):
    def test_ls_302_lists_every_capability_and_enables_cap_notify(self) -> None:
        harness = Harness()
        client = harness.connect()
        client.send("CAP LS 302")
        listed = " ".join(m.params[-1] for m in client.messages()).split()
        self.assertEqual([item.split("=")[0] for item in listed], list(SUPPORTED_CAPS))
        for name, value in SUPPORTED_CAPS.items():
            self.assertIn(f"{name}={value}" if value else name, listed)
        self.assertIn("cap-notify", client.conn.caps)

    def test_ls_without_302_has_no_values(self) -> None:
        client = Harness().connect()
        client.send("CAP LS")
        listed = " ".join(m.params[-1] for m in client.messages()).split()
        self.assertEqual(listed, list(SUPPORTED_CAPS))
        self.assertNotIn("cap-notify", client.conn.caps)

    def test_every_capability_can_be_requested(self) -> None:
        harness = Harness()
        client = harness.register("alice")
        client.send("CAP REQ :" + " ".join(SUPPORTED_CAPS))
        self.assertIn(" ACK ", client.lines()[0])
        self.assertEqual(client.conn.caps, set(SUPPORTED_CAPS))
