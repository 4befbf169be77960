"""IRCv3 in the channel and query commands: extended-join, invite-notify,
bot mode, account in WHOIS/WHOX, and channel events for event-playback."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chat import numerics
from tests.ircv3_support import with_caps
from tests.support import Harness
from tests.test_chathistory import HISTORY_CAPS, batch_body


class ExtendedJoinTests(TestCase):
    def test_join_shows_account_and_realname_to_extended_join_clients(self) -> None:
        harness = Harness()
        alice, bob = harness.channel_of("alice", "bob")
        with_caps(bob, "extended-join")
        dave = harness.register("dave")
        dave.conn.account = "dave"
        dave.send("JOIN #chan")
        self.assertEqual(
            bob.lines(), [":dave!~dave@127.0.0.1 JOIN #chan dave :dave Real"]
        )
        self.assertEqual(alice.lines(), [":dave!~dave@127.0.0.1 JOIN #chan"])


class InviteNotifyTests(TestCase):
    def test_channel_operators_hear_of_invitations(self) -> None:
        harness = Harness()
        alice, bob, carol = harness.channel_of("alice", "bob", "carol")
        alice.send("MODE #chan +o bob")
        for client in (alice, bob, carol):
            with_caps(client, "invite-notify")
            client.raw()
        dave = harness.register("dave")
        alice.send("INVITE dave #chan")
        self.assertEqual(bob.lines(), [":alice!~alice@127.0.0.1 INVITE dave #chan"])
        self.assertEqual(carol.lines(), [])
        self.assertEqual(dave.lines(), [":alice!~alice@127.0.0.1 INVITE dave #chan"])
        self.assertEqual(alice.commands(), [numerics.RPL_INVITING])


class BotModeTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.bot, self.alice = self.harness.channel_of("bot", "alice")

    def test_mode_b(self) -> None:
        self.bot.send("MODE bot +B")
        self.assertEqual(self.bot.lines(), [":bot MODE bot :+B"])
        self.assertIn("B", self.bot.conn.modes)

    def test_whois_who_and_myinfo(self) -> None:
        self.bot.send("MODE bot +B")
        self.alice.send("WHOIS bot", "WHO #chan")
        messages = self.alice.messages()
        [whoisbot] = [m for m in messages if m.command == numerics.RPL_WHOISBOT]
        self.assertEqual(whoisbot.params[1:], ("bot", "is a bot"))
        flags = {m.params[5]: m.params[6] for m in messages if m.command == "352"}
        self.assertEqual(flags["bot"], "H@B")
        self.assertEqual(flags["alice"], "H")
        client = self.harness.connect()
        client.send("NICK x", "USER x 0 * :X")
        myinfo = [m for m in client.messages() if m.command == numerics.RPL_MYINFO]
        self.assertIn("B", myinfo[0].params[3])


class AccountQueryTests(TestCase):
    def test_whois_and_whox_show_the_account(self) -> None:
        harness = Harness()
        alice, bob = harness.channel_of("alice", "bob")
        alice.conn.account = "alice_acct"
        bob.send("WHOIS alice", "WHO #chan %na")
        messages = bob.messages()
        [account] = [m for m in messages if m.command == numerics.RPL_WHOISACCOUNT]
        self.assertEqual(account.params[1:], ("alice", "alice_acct", "is logged in as"))
        whox = {m.params[1]: m.params[2] for m in messages if m.command == "354"}
        self.assertEqual(whox, {"alice": "alice_acct", "bob": "0"})


class EventPlaybackTests(TestCase):
    def test_channel_events_replay_only_with_event_playback(self) -> None:
        harness = Harness()
        alice, bob = harness.channel_of("alice", "bob")
        carol = harness.register("carol")
        carol.send("JOIN #chan")
        alice.send(
            "TOPIC #chan :news",
            "MODE #chan +v bob",
            "PRIVMSG #chan :hello",
            "KICK #chan carol :out",
        )
        bob.send("NICK robert")
        dave = harness.register("dave")
        dave.send("JOIN #chan", "PART #chan :bye")
        dave.send("JOIN #chan", "QUIT :gone")
        watcher = with_caps(harness.register("watcher"), *HISTORY_CAPS)
        watcher.send("JOIN #chan")
        watcher.raw()
        watcher.send("CHATHISTORY LATEST #chan * 100")
        self.assertEqual([m.command for m in batch_body(watcher)[1]], ["PRIVMSG"])
        with_caps(watcher, "draft/event-playback")
        watcher.send("CHATHISTORY LATEST #chan * 100")
        self.assertEqual(
            [m.command for m in batch_body(watcher)[1]],
            [
                "JOIN",
                "JOIN",
                "JOIN",
                "TOPIC",
                "MODE",
                "PRIVMSG",
                "KICK",
                "NICK",
                "JOIN",
                "PART",
                "JOIN",
                "QUIT",
                "JOIN",
            ],
        )
