"""IRCv3 message-tags, TAGMSG, msgid, server-time, account-tag and bot tags."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chat import numerics
from chat.commands.capabilities import SUPPORTED_CAPS
from tests.ircv3_support import with_caps
from tests.support import Harness


class MessageTagsTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.alice, self.bob, self.carol = self.harness.channel_of(
            "alice", "bob", "carol"
        )

    def test_advertised(self) -> None:
        for cap in ("message-tags", "server-time", "account-tag", "batch"):
            self.assertIn(cap, SUPPORTED_CAPS)

    def test_client_tags_only_to_message_tags_clients(self) -> None:
        with_caps(self.bob, "message-tags")
        self.alice.send("@+example=a\\sb;server-only=x PRIVMSG #chan :hi")
        [tagged] = self.bob.messages()
        self.assertEqual(tagged.tags["+example"], "a b")
        self.assertNotIn("server-only", tagged.tags)
        self.assertIn("msgid", tagged.tags)
        self.assertEqual(
            self.carol.lines(), [":alice!~alice@127.0.0.1 PRIVMSG #chan :hi"]
        )

    def test_server_tags_come_before_client_tags(self) -> None:
        with_caps(self.bob, "message-tags")
        self.alice.send("@+a=1 PRIVMSG #chan :hi")
        line = self.bob.lines()[0]
        self.assertLess(line.index("msgid="), line.index("+a=1"))

    def test_msgid_on_privmsg_notice_and_tagmsg(self) -> None:
        with_caps(self.bob, "message-tags")
        self.alice.send("PRIVMSG #chan :a", "NOTICE #chan :b", "TAGMSG #chan")
        self.alice.send("PRIVMSG bob :c", "NOTICE bob :d", "@+typing=active TAGMSG bob")
        messages = self.bob.messages()
        self.assertEqual(
            [m.command for m in messages],
            ["PRIVMSG", "NOTICE", "TAGMSG", "PRIVMSG", "NOTICE", "TAGMSG"],
        )
        ids = [m.tags["msgid"] for m in messages]
        self.assertEqual(len(set(ids)), 6)
        self.assertEqual(messages[-1].tags["+typing"], "active")
        self.assertEqual(messages[2].params, ("#chan",))

    def test_msgid_and_account_on_other_relayed_messages(self) -> None:
        with_caps(self.bob, "message-tags", "account-tag")
        dave = self.harness.register("dave")
        dave.conn.account = "dave"  # type: ignore[attr-defined]
        dave.send("JOIN #chan")
        self.alice.send("TOPIC #chan :hello")
        dave.send("NICK david", "PART #chan")
        self.alice.send("QUIT :bye")
        messages = self.bob.messages()
        self.assertEqual(
            [m.command for m in messages], ["JOIN", "TOPIC", "NICK", "PART", "QUIT"]
        )
        self.assertEqual(len({m.tags["msgid"] for m in messages}), 5)
        self.assertEqual(
            [m.tags.get("account") for m in messages],
            ["dave", None, "dave", "dave", None],
        )

    def test_tagmsg_only_to_message_tags_clients(self) -> None:
        with_caps(self.bob, "message-tags")
        self.alice.send("@+react=1 TAGMSG #chan")
        self.assertEqual(self.bob.commands(), ["TAGMSG"])
        self.assertEqual(self.carol.lines(), [])

    def test_tagmsg_echo_and_errors(self) -> None:
        with_caps(self.alice, "message-tags", "echo-message")
        self.alice.send("@+x TAGMSG #chan", "TAGMSG", "TAGMSG #nowhere")
        self.assertEqual(
            self.alice.commands(),
            ["TAGMSG", numerics.ERR_NORECIPIENT, numerics.ERR_NOSUCHCHANNEL],
        )

    def test_tagmsg_statusmsg(self) -> None:
        with_caps(self.bob, "message-tags")
        with_caps(self.carol, "message-tags")
        self.alice.send("MODE #chan +o bob")
        self.bob.raw()
        self.carol.raw()
        self.alice.send("@+x TAGMSG @#chan")
        self.assertEqual(self.bob.messages()[0].params, ("@#chan",))
        self.assertEqual(self.carol.lines(), [])

    def test_client_tag_data_over_4094_bytes_is_refused(self) -> None:
        with_caps(self.bob, "message-tags")
        tags = "+a=" + "x" * 4092
        self.assertEqual(len(tags), 4095)
        self.alice.send(f"@{tags} TAGMSG #chan")
        self.assertEqual(self.alice.commands(), [numerics.ERR_INPUTTOOLONG])
        self.assertEqual(self.bob.lines(), [])
        self.alice.send(f"@{tags[:-1]} TAGMSG #chan")
        self.assertEqual(self.alice.lines(), [])
        self.assertEqual(len(self.bob.messages()[0].tags["+a"]), 4091)

    def test_relayed_tags_stay_within_8191_bytes(self) -> None:
        with_caps(self.bob, "message-tags", "server-time", "account-tag")
        self.alice.conn.account = "alice"  # type: ignore[attr-defined]
        self.alice.send("@+a=" + "x" * 4091 + " PRIVMSG #chan :hi")
        line = self.bob.raw()
        self.assertLessEqual(line.index(b" "), 8191)

    def test_server_time(self) -> None:
        with_caps(self.bob, "server-time")
        self.harness.clock.advance(1.5)
        self.alice.send("PRIVMSG #chan :hi")
        [message] = self.bob.messages()
        self.assertEqual(message.tags, {"time": "1970-01-01T00:00:01.500Z"})

    def test_account_tag(self) -> None:
        with_caps(self.bob, "account-tag")
        self.alice.conn.account = "AliceAcct"  # type: ignore[attr-defined]
        self.alice.send("PRIVMSG #chan :hi")
        self.carol.send("PRIVMSG #chan :anonymous")
        first, second = self.bob.messages()
        self.assertEqual(first.tags, {"account": "AliceAcct"})
        self.assertEqual(second.tags, {})

    def test_bot_tag(self) -> None:
        with_caps(self.bob, "message-tags")
        self.alice.conn.modes.add("B")
        self.alice.send("PRIVMSG #chan :beep")
        self.assertIn("bot", self.bob.messages()[0].tags)
        self.assertEqual(
            self.carol.lines(), [":alice!~alice@127.0.0.1 PRIVMSG #chan :beep"]
        )

    def test_bot_isupport(self) -> None:
        client = self.harness.connect()
        client.send("NICK dave", "USER d 0 * :D")
        tokens = [p for m in client.messages() if m.command == "005" for p in m.params]
        self.assertIn("BOT=B", tokens)

    def test_same_bytes_for_every_recipient_of_a_profile(self) -> None:
        dave = self.harness.register("dave")
        dave.send("JOIN #chan")
        for client in (self.bob, self.carol):
            with_caps(client, "message-tags", "server-time")
        with_caps(dave, "extended-join", "server-time", "message-tags")
        written: list[bytes] = []
        for client in (self.bob, self.carol, dave):
            client.conn.transmit = written.append  # type: ignore[method-assign]
        self.alice.send("PRIVMSG #chan :shared")
        self.assertEqual(len(written), 3)
        self.assertIs(written[0], written[1])
        self.assertIs(written[1], written[2])


class EchoMessageTests(TestCase):
    def test_echo_carries_the_same_msgid(self) -> None:
        harness = Harness()
        alice, bob = harness.channel_of("alice", "bob")
        with_caps(alice, "echo-message", "message-tags")
        with_caps(bob, "message-tags")
        alice.send("PRIVMSG #chan :hi")
        echoed, delivered = alice.messages()[0], bob.messages()[0]
        self.assertEqual(echoed.tags["msgid"], delivered.tags["msgid"])
