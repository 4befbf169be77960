"""CHATHISTORY: selections, batches, errors and who may read what."""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import TestCase

from chat.history import QUERY_LIMIT, Query
from chat.message import Message
from tests.ircv3_support import with_caps
from tests.support import UNPACED, FakeClient, Harness

HISTORY_CAPS = ("batch", "server-time", "message-tags", "draft/chathistory")


def batch_body(client: FakeClient) -> tuple[Message, list[Message]]:
    """The BATCH start and the messages inside it; checks the batch is whole."""
    messages = client.messages()
    start, end = messages[0], messages[-1]
    assert start.command == "BATCH" and start.params[0].startswith("+"), messages
    ref = start.params[0][1:]
    assert end.params == (f"-{ref}",), messages
    body = messages[1:-1]
    assert all(m.tags.get("batch") == ref for m in body), body
    return start, body


def texts(messages: list[Message]) -> list[str]:
    return [m.params[-1] for m in messages]


class ChannelHistoryTests(TestCase):
    def setUp(self) -> None:
        # test_limit_is_capped_and_advertised sends more than fakelag allows.
        self.harness = Harness(limits=UNPACED)
        self.alice, self.bob = self.harness.channel_of("alice", "bob")
        with_caps(self.bob, *HISTORY_CAPS)
        for n in range(1, 6):
            self.harness.clock.advance(1)
            self.alice.send(f"PRIVMSG #chan :message {n}")
        self.delivered = self.bob.messages()

    def test_latest_in_a_chathistory_batch(self) -> None:
        self.bob.send("CHATHISTORY LATEST #CHAN * 3")
        start, body = batch_body(self.bob)
        self.assertEqual(start.params[1:], ("chathistory", "#chan"))
        self.assertEqual(texts(body), ["message 3", "message 4", "message 5"])
        self.assertEqual(body[0].source, "alice!~alice@127.0.0.1")
        self.assertEqual(body[0].command, "PRIVMSG")
        self.assertEqual(
            [m.tags["msgid"] for m in body],
            [m.tags["msgid"] for m in self.delivered[2:]],
        )
        self.assertEqual(body[0].tags["time"], "1970-01-01T00:00:03.000Z")

    def test_before_after_around_between(self) -> None:
        ids = [m.tags["msgid"] for m in self.delivered]
        self.bob.send(f"CHATHISTORY BEFORE #chan msgid={ids[3]} 2")
        self.assertEqual(texts(batch_body(self.bob)[1]), ["message 2", "message 3"])
        self.bob.send("CHATHISTORY AFTER #chan timestamp=1970-01-01T00:00:03.500Z 5")
        self.assertEqual(texts(batch_body(self.bob)[1]), ["message 4", "message 5"])
        self.bob.send(f"CHATHISTORY AROUND #chan msgid={ids[2]} 3")
        self.assertEqual(
            texts(batch_body(self.bob)[1]), ["message 2", "message 3", "message 4"]
        )
        self.bob.send(f"CHATHISTORY BETWEEN #chan msgid={ids[4]} msgid={ids[0]} 2")
        self.assertEqual(texts(batch_body(self.bob)[1]), ["message 3", "message 4"])
        self.bob.send(f"CHATHISTORY LATEST #chan msgid={ids[3]} 10")
        self.assertEqual(texts(batch_body(self.bob)[1]), ["message 5"])

    def test_non_member_cannot_read_channel_history(self) -> None:
        carol = with_caps(self.harness.register("carol"), *HISTORY_CAPS)
        carol.send("CHATHISTORY LATEST #chan * 10", "CHATHISTORY LATEST #nowhere * 1")
        lines = carol.lines()
        self.assertEqual(
            lines,
            [
                ":irc.test FAIL CHATHISTORY INVALID_TARGET LATEST #chan"
                " :Messages could not be retrieved",
                ":irc.test FAIL CHATHISTORY INVALID_TARGET LATEST #nowhere"
                " :Messages could not be retrieved",
            ],
        )

    def test_former_member_cannot_read_it_either(self) -> None:
        self.bob.send("PART #chan")
        self.bob.raw()
        self.bob.send("CHATHISTORY LATEST #chan * 10")
        self.assertEqual(self.bob.messages()[0].command, "FAIL")

    def test_statusmsg_and_notices(self) -> None:
        self.alice.send("PRIVMSG @#chan :ops only", "NOTICE #chan :a notice")
        self.bob.raw()
        self.bob.send("CHATHISTORY LATEST #chan * 2")
        body = batch_body(self.bob)[1]
        self.assertEqual(texts(body), ["message 5", "a notice"])
        self.assertEqual(body[1].command, "NOTICE")

    def test_limit_is_capped_and_advertised(self) -> None:
        for n in range(QUERY_LIMIT + 5):
            self.alice.send(f"PRIVMSG #chan :more {n}")
        self.bob.raw()
        self.bob.send("CHATHISTORY LATEST #chan * 1000")
        self.assertEqual(len(batch_body(self.bob)[1]), QUERY_LIMIT)
        tokens = self.harness.server.isupport()
        self.assertIn(f"CHATHISTORY={QUERY_LIMIT}", tokens)
        self.assertIn("MSGREFTYPES=msgid,timestamp", tokens)

    def test_lenient_limits_and_before_star(self) -> None:
        for command in (
            "CHATHISTORY LATEST #chan *",
            "CHATHISTORY LATEST #chan * 0",
            "CHATHISTORY LATEST #chan * many",
            "CHATHISTORY BEFORE #chan * 100000",
        ):
            self.bob.send(command)
            self.assertEqual(len(batch_body(self.bob)[1]), 5, command)

    def test_a_time_read_from_a_message_excludes_that_message(self) -> None:
        self.harness.clock.advance(0.0124567)
        self.alice.send("PRIVMSG #chan :odd time")
        [message] = self.bob.messages()
        stamp = message.tags["time"]
        self.bob.send(f"CHATHISTORY AFTER #chan timestamp={stamp} 10")
        self.assertEqual(batch_body(self.bob)[1], [])
        self.bob.send(f"CHATHISTORY BEFORE #chan timestamp={stamp} 1")
        self.assertEqual(texts(batch_body(self.bob)[1]), ["message 5"])
        self.bob.send("CHATHISTORY LATEST #chan * 1")
        self.assertEqual(batch_body(self.bob)[1][0].tags["time"], stamp)

    def test_without_batch_the_lines_come_plain(self) -> None:
        carol = self.harness.register("carol")
        carol.send("JOIN #chan")
        carol.raw()
        carol.send("CHATHISTORY LATEST #chan * 2")
        self.assertEqual(
            carol.lines(),
            [
                ":alice!~alice@127.0.0.1 PRIVMSG #chan :message 4",
                ":alice!~alice@127.0.0.1 PRIVMSG #chan :message 5",
            ],
        )

    def test_event_playback_adds_tagmsg(self) -> None:
        self.alice.send("@+draft/react=ok TAGMSG #chan")
        self.alice.send("@+typing=active TAGMSG #chan")  # not worth keeping
        self.bob.raw()
        self.bob.send("CHATHISTORY LATEST #chan * 1")
        self.assertEqual(batch_body(self.bob)[1][0].command, "PRIVMSG")
        with_caps(self.bob, "draft/event-playback")
        self.bob.send("CHATHISTORY LATEST #chan * 1")
        [tagmsg] = batch_body(self.bob)[1]
        self.assertEqual(tagmsg.command, "TAGMSG")
        self.assertEqual(tagmsg.tags["+draft/react"], "ok")

    def test_tagmsg_asking_to_persist_is_kept(self) -> None:
        self.alice.send("@+draft/persist;+x=1 TAGMSG #chan")
        with_caps(self.bob, "draft/event-playback")
        self.bob.send("CHATHISTORY LATEST #chan * 1")
        [tagmsg] = batch_body(self.bob)[1]
        self.assertEqual((tagmsg.command, tagmsg.tags["+x"]), ("TAGMSG", "1"))

    def test_errors(self) -> None:
        self.bob.send(
            "CHATHISTORY FOO #chan * 1",
            "CHATHISTORY LATEST #chan",
            "CHATHISTORY BETWEEN #chan *",
            "CHATHISTORY AFTER #chan * 5",
            "CHATHISTORY AFTER #chan timestamp=yesterday 5",
            "CHATHISTORY AFTER #chan bogus=1 5",
            "CHATHISTORY TARGETS * * 5",
        )
        codes = [m.params[:3] for m in self.bob.messages()]
        self.assertEqual(
            codes,
            [
                ("CHATHISTORY", "UNKNOWN_COMMAND", "FOO"),
                ("CHATHISTORY", "NEED_MORE_PARAMS", "LATEST"),
                ("CHATHISTORY", "NEED_MORE_PARAMS", "BETWEEN"),
                ("CHATHISTORY", "INVALID_PARAMS", "AFTER"),
                ("CHATHISTORY", "INVALID_PARAMS", "AFTER"),
                ("CHATHISTORY", "INVALID_PARAMS", "AFTER"),
                ("CHATHISTORY", "INVALID_PARAMS", "TARGETS"),
            ],
        )


class PrivateHistoryTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.alice = with_caps(self.harness.register("alice"), *HISTORY_CAPS)
        self.bob = with_caps(self.harness.register("bob"), *HISTORY_CAPS)

    def test_both_parties_see_the_conversation(self) -> None:
        self.alice.send("PRIVMSG bob :hi bob")
        self.bob.send("PRIVMSG alice :hi alice")
        self.alice.raw()
        self.bob.raw()
        for client, peer in ((self.alice, "bob"), (self.bob, "alice")):
            client.send(f"CHATHISTORY LATEST {peer} * 10")
            start, body = batch_body(client)
            self.assertEqual(start.params[2], peer)
            self.assertEqual(texts(body), ["hi bob", "hi alice"])

    def test_a_third_user_sees_nothing(self) -> None:
        self.alice.send("PRIVMSG bob :secret")
        carol = with_caps(self.harness.register("carol"), *HISTORY_CAPS)
        for target in ("bob", "alice"):
            carol.send(f"CHATHISTORY LATEST {target} * 10")
            self.assertEqual(batch_body(carol)[1], [])

    def test_the_account_owns_the_history_not_the_nick(self) -> None:
        self.alice.conn.account = "alice"  # type: ignore[attr-defined]
        self.alice.send("PRIVMSG bob :from the account")
        self.alice.send("QUIT")
        impostor = with_caps(self.harness.register("alice"), *HISTORY_CAPS)
        impostor.send("CHATHISTORY LATEST bob * 10")
        self.assertEqual(batch_body(impostor)[1], [], "same nick, no account")
        owner = with_caps(self.harness.register("alice_"), *HISTORY_CAPS)
        owner.conn.account = "Alice"  # type: ignore[attr-defined]
        owner.send("CHATHISTORY LATEST bob * 10")
        self.assertEqual(texts(batch_body(owner)[1]), ["from the account"])

    def test_star_is_every_conversation(self) -> None:
        carol = with_caps(self.harness.register("carol"), *HISTORY_CAPS)
        self.alice.send("PRIVMSG bob :to bob", "PRIVMSG carol :to carol")
        carol.send("PRIVMSG bob :carol to bob")
        self.alice.raw()
        self.alice.send("CHATHISTORY LATEST * * 10")
        start, body = batch_body(self.alice)
        self.assertEqual(start.params[2], "*")
        self.assertEqual(texts(body), ["to bob", "to carol"])

    def test_offline_peer_history(self) -> None:
        self.alice.send("PRIVMSG bob :see you")
        self.bob.send("QUIT")
        self.alice.send("CHATHISTORY LATEST bob * 10")
        self.assertEqual(texts(batch_body(self.alice)[1]), ["see you"])

    def test_targets(self) -> None:
        self.alice.send("JOIN #chan")
        self.harness.clock.advance(5)
        self.alice.send("PRIVMSG #chan :in the channel")
        self.harness.clock.advance(5)
        self.alice.send("PRIVMSG bob :direct")
        self.alice.raw()
        self.alice.send(
            "CHATHISTORY TARGETS timestamp=1970-01-01T00:00:00.000Z"
            " timestamp=1970-01-02T00:00:00.000Z 10"
        )
        start, body = batch_body(self.alice)
        self.assertEqual(start.params[1:], ("draft/chathistory-targets",))
        self.assertEqual(
            [m.params for m in body],
            [
                ("TARGETS", "#chan", "1970-01-01T00:00:05.000Z"),
                ("TARGETS", "bob", "1970-01-01T00:00:10.000Z"),
            ],
        )
        self.bob.raw()
        self.bob.send(
            "CHATHISTORY TARGETS timestamp=1970-01-01T00:00:00.000Z"
            " timestamp=1970-01-02T00:00:00.000Z 10"
        )
        self.assertEqual([m.params[1] for m in batch_body(self.bob)[1]], ["alice"])


class BrokenHistory:
    """A history store whose reads fail."""

    def add(self, item: object) -> None:
        pass

    def stored(self) -> Deferred[None]:
        return succeed(None)

    def query(self, query: object) -> Deferred[list[object]]:
        return fail(RuntimeError("disk on fire"))

    def targets(self, *args: object) -> Deferred[list[object]]:
        return fail(RuntimeError("disk on fire"))


class StoreFailureTests(TestCase):
    def test_a_failed_read_answers_message_error(self) -> None:
        harness = Harness()
        harness.server.history = BrokenHistory()  # type: ignore[assignment]
        alice = with_caps(harness.register("alice"), *HISTORY_CAPS)
        alice.send("JOIN #chan")
        alice.raw()
        alice.send(
            "CHATHISTORY LATEST #chan * 10",
            "CHATHISTORY TARGETS timestamp=1970-01-01T00:00:00.000Z"
            " timestamp=1970-01-02T00:00:00.000Z 10",
        )
        self.assertEqual(
            alice.lines(),
            [
                ":irc.test FAIL CHATHISTORY MESSAGE_ERROR LATEST #chan"
                " :Messages could not be retrieved",
                ":irc.test FAIL CHATHISTORY MESSAGE_ERROR TARGETS *"
                " :Messages could not be retrieved",
            ],
        )
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)

    def test_messages_to_services_are_not_kept(self) -> None:
        harness = Harness()
        alice = harness.register("alice")
        alice.send("PRIVMSG NickServ :IDENTIFY alice secret")
        alice.raw()
        found = harness.server.history.query(
            Query(("n:alice n:nickserv",), "LATEST", None, 10)
        )
        self.assertEqual(self.successResultOf(found), [])
