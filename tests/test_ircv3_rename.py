"""draft/channel-rename: RENAME."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chat import numerics
from chat.commands.capabilities import SUPPORTED_CAPS
from tests.accounts_support import PASSWORD, account_harness, make_account
from tests.ircv3_support import with_caps
from tests.support import Harness


class RenameTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.alice, self.bob, self.carol = self.harness.channel_of(
            "alice", "bob", "carol", channel="#old"
        )
        with_caps(self.bob, "draft/channel-rename")
        self.alice.send("TOPIC #old :the topic")
        for client in (self.alice, self.bob, self.carol):
            client.raw()

    def test_operator_renames(self) -> None:
        self.alice.send("RENAME #old #new :tidier")
        self.assertEqual(
            self.bob.lines(), [":alice!~alice@127.0.0.1 RENAME #old #new tidier"]
        )
        carol = self.carol.messages()
        self.assertEqual(
            [(m.command, m.params[:1]) for m in carol[:2]],
            [("PART", ("#old",)), ("JOIN", ("#new",))],
        )
        self.assertEqual(carol[0].params[1], "Channel renamed: tidier")
        self.assertEqual(carol[0].source, "carol!~carol@127.0.0.1")
        self.assertIn(numerics.RPL_TOPIC, [m.command for m in carol])
        self.assertIn(numerics.RPL_NAMREPLY, [m.command for m in carol])
        server = self.harness.server
        self.assertIsNone(server.find_channel("#old"))
        channel = server.find_channel("#new")
        assert channel is not None
        self.assertEqual(channel.name, "#new")
        self.assertIs(self.carol.conn.channels["#new"], channel)
        self.assertNotIn("#old", self.carol.conn.channels)
        self.carol.send("PRIVMSG #new :still here")
        self.assertEqual(
            self.bob.lines(), [":carol!~carol@127.0.0.1 PRIVMSG #new :still here"]
        )
        self.assertIn("draft/channel-rename", SUPPORTED_CAPS)

    def test_case_only_rename(self) -> None:
        self.alice.send("RENAME #old #OLD")
        self.assertEqual(self.bob.lines(), [":alice!~alice@127.0.0.1 RENAME #old #OLD"])

    def test_refusals(self) -> None:
        self.harness.server.create_channel("#taken")
        self.bob.send("RENAME #old #new")
        self.assertEqual(self.bob.commands(), [numerics.ERR_CHANOPRIVSNEEDED])
        self.alice.send("RENAME #nowhere #new", "RENAME #old bad", "RENAME #old #taken")
        got = self.alice.messages()
        self.assertEqual(
            [m.command for m in got],
            [numerics.ERR_NOSUCHCHANNEL, numerics.ERR_NOSUCHCHANNEL, "FAIL"],
        )
        self.assertEqual(got[2].params[:2], ("RENAME", "CHANNEL_NAME_IN_USE"))
        self.assertIsNotNone(self.harness.server.find_channel("#old"))

    def test_registered_channel_cannot_be_renamed(self) -> None:
        harness = account_harness()
        make_account(harness, "alice")
        alice = harness.register("alice")
        alice.send(f"NS IDENTIFY alice {PASSWORD}", "JOIN #reg", "CS REGISTER #reg")
        channel = harness.server.find_channel("#reg")
        assert channel is not None
        self.assertIn(channel.folded, harness.server.services.chanserv.registered)
        alice.raw()
        alice.send("RENAME #reg #new")
        self.assertEqual(alice.messages()[0].params[:2], ("RENAME", "CANNOT_RENAME"))
