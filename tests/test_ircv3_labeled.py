"""IRCv3 labeled-response and batch: every reply path is labeled."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from chat import numerics
from chat.commands import COMMANDS, Command
from chat.labeled import add_tags, in_batch, wrap_batch
from chat.message import Message
from tests.ircv3_support import with_caps
from tests.support import Harness


class LabeledResponseTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.alice, self.bob = self.harness.channel_of("alice", "bob")
        with_caps(self.alice, "labeled-response", "batch")

    def test_ack_when_there_is_no_reply(self) -> None:
        self.alice.send("@label=abc PONG :x")
        self.assertEqual(self.alice.lines(), ["@label=abc :irc.test ACK"])

    def test_single_reply_carries_the_label(self) -> None:
        self.alice.send("@label=dc11 PRIVMSG nobody :hi")
        self.assertEqual(
            self.alice.lines(),
            ["@label=dc11 :irc.test 401 alice nobody :No such nick/channel"],
        )

    def test_echo_message_is_labeled_only_for_the_sender(self) -> None:
        with_caps(self.alice, "echo-message", "message-tags")
        with_caps(self.bob, "message-tags")
        self.alice.send("@label=pQ;+draft/x=1 PRIVMSG #chan :hello")
        [echo] = self.alice.messages()
        self.assertEqual(echo.tags["label"], "pQ")
        self.assertEqual(echo.tags["+draft/x"], "1")
        [delivered] = self.bob.messages()
        self.assertNotIn("label", delivered.tags)
        self.assertEqual(delivered.tags["msgid"], echo.tags["msgid"])

    def test_several_replies_in_a_labeled_batch(self) -> None:
        self.alice.send("@label=mGhe NAMES #chan")
        messages = self.alice.messages()
        start, end = messages[0], messages[-1]
        self.assertEqual(start.command, "BATCH")
        self.assertEqual(start.tags, {"label": "mGhe"})
        ref = start.params[0][1:]
        self.assertEqual(start.params, (f"+{ref}", "labeled-response"))
        self.assertEqual(end.params, (f"-{ref}",))
        self.assertEqual(end.tags, {})
        self.assertEqual(
            [m.command for m in messages[1:-1]],
            [numerics.RPL_NAMREPLY, numerics.RPL_ENDOFNAMES],
        )
        for message in messages[1:-1]:
            self.assertEqual(message.tags, {"batch": ref})

    def test_label_value_is_escaped(self) -> None:
        self.alice.send("@label=a\\sb PONG x")
        self.assertEqual(self.alice.messages()[0].tags["label"], "a b")

    def test_no_label_without_the_capabilities(self) -> None:
        self.bob.send("@label=x PRIVMSG nobody :hi", "@label=y PONG x")
        self.assertEqual(self.bob.commands(), [numerics.ERR_NOSUCHNICK])
        with_caps(self.bob, "labeled-response")
        self.bob.send("@label=x PONG x")
        self.assertEqual(self.bob.lines(), [], "batch is required as well")

    def test_unlabeled_commands_unchanged(self) -> None:
        self.alice.send("PRIVMSG nobody :hi")
        self.assertEqual(
            self.alice.lines(), [":irc.test 401 alice nobody :No such nick/channel"]
        )

    def test_unknown_command_and_errors_are_labeled(self) -> None:
        self.alice.send("@label=u FOO", "@label=v JOIN")
        first, second = self.alice.messages()
        self.assertEqual((first.command, first.tags), ("421", {"label": "u"}))
        self.assertEqual((second.command, second.tags), ("461", {"label": "v"}))

    def test_other_users_output_is_not_captured(self) -> None:
        self.alice.send("@label=z PRIVMSG #chan :hi")
        self.assertEqual(self.alice.lines(), ["@label=z :irc.test ACK"])
        self.assertEqual(
            self.bob.lines(), [":alice!~alice@127.0.0.1 PRIVMSG #chan :hi"]
        )

    def test_a_later_answer_through_the_responder(self) -> None:
        later: Deferred[None] = Deferred()

        def slow(conn, server, msg):  # type: ignore[no-untyped-def]
            response = conn.responder()
            conn.reply("375", "first")

            def answer(_: None) -> None:
                response.send(Message("NOTICE", (conn.nick, "done"), server.name))
                response.finish()

            later.addCallback(answer)

        COMMANDS["SLOWTEST"] = Command(slow)
        self.addCleanup(COMMANDS.pop, "SLOWTEST")
        self.alice.send("@label=s1 SLOWTEST")
        self.assertEqual(self.alice.lines(), [])
        self.alice.send("@label=s2 PONG x")
        # The next command waits for the answer to the one before it.
        self.assertEqual(self.alice.lines(), [])
        later.callback(None)
        messages = self.alice.messages()
        self.assertEqual(messages[0].tags, {"label": "s1"})
        self.assertEqual(
            [m.command for m in messages], ["BATCH", "375", "NOTICE", "BATCH", "ACK"]
        )
        self.assertEqual(messages[-1].tags, {"label": "s2"})

    def test_a_single_batch_takes_the_label_itself(self) -> None:
        self.alice.send("@label=h CHATHISTORY LATEST #chan * 10")
        messages = self.alice.messages()
        self.assertEqual([m.command for m in messages], ["BATCH", "BATCH"])
        self.assertEqual(messages[0].params[1], "chathistory")
        self.assertEqual(messages[0].tags, {"label": "h"})


class BatchHelperTests(TestCase):
    def test_add_tags(self) -> None:
        self.assertEqual(add_tags(b":a B\r\n", b"x=1"), b"@x=1 :a B\r\n")
        self.assertEqual(add_tags(b"@y=2 :a B\r\n", b"x=1"), b"@x=1;y=2 :a B\r\n")

    def test_in_batch(self) -> None:
        self.assertTrue(in_batch(b"@batch=1 :a B\r\n"))
        self.assertTrue(in_batch(b"@x=1;batch=1 :a B\r\n"))
        self.assertFalse(in_batch(b"@xbatch=1 :a B\r\n"))
        self.assertFalse(in_batch(b":a B batch=1\r\n"))

    def test_nested_batches_keep_their_own_tag(self) -> None:
        inner = wrap_batch("s", "chathistory", ("#c",), [b":a PRIVMSG #c x\r\n"])
        outer = wrap_batch("s", "labeled-response", (), [b":s 001 a\r\n", *inner])
        outer_ref = outer[0].split(b" ")[2][1:]
        inner_ref = inner[0].split(b" ")[2][1:]
        self.assertNotEqual(outer_ref, inner_ref)
        self.assertTrue(outer[1].startswith(b"@batch=" + outer_ref + b" "))
        self.assertTrue(outer[2].startswith(b"@batch=" + outer_ref + b" :s BATCH +"))
        self.assertTrue(outer[3].startswith(b"@batch=" + inner_ref + b" "))
        self.assertEqual(outer[4], b"@batch=" + outer_ref + b" " + inner[2])
        self.assertEqual(outer[5], b":s BATCH -" + outer_ref + b"\r\n")
