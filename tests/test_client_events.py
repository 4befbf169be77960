"""Each kind of incoming message lands in the right buffer, in words."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chat.client import commands
from chat.client.model import Activity, Buffer, Kind
from tests.client_support import Wire


def joined(caps: str = "") -> Wire:
    """A registered wire, in #chat with bob (op) and carol (voiced)."""
    wire = Wire()
    wire.register(caps=caps)
    wire.feed(
        ":alice!a@h JOIN #chat",
        ":srv 332 alice #chat :Welcome to chat",
        ":srv 353 alice = #chat :alice @bob +carol",
        ":srv 366 alice #chat :End of /NAMES list",
        ":srv 324 alice #chat +nt",
    )
    wire.sent()
    wire.state.switch(1)
    return wire


class MessageRoutingTests(TestCase):
    def test_channel_message(self) -> None:
        wire = joined()
        wire.feed(":bob!b@h PRIVMSG #chat :hi all")
        line = wire.state.find("#chat").lines[-1]  # type: ignore[union-attr]
        self.assertEqual(
            (line.kind, line.nick, line.text), (Kind.MESSAGE, "bob", "hi all")
        )
        self.assertFalse(line.highlight)

    def test_private_message_opens_query_with_highlight(self) -> None:
        wire = joined()
        wire.feed(":dave!d@h PRIVMSG alice :psst")
        query = wire.state.find("dave")
        assert query is not None
        self.assertEqual(query.kind, Buffer.QUERY)
        self.assertEqual(wire.lines("dave"), ["psst"])
        self.assertEqual(query.activity, Activity.HIGHLIGHT)

    def test_mention_is_a_highlight(self) -> None:
        wire = joined()
        wire.state.switch(0)
        wire.feed(":bob!b@h PRIVMSG #chat :alice: look at this")
        buffer = wire.state.find("#chat")
        assert buffer is not None
        self.assertTrue(buffer.lines[-1].highlight)
        self.assertEqual(buffer.activity, Activity.HIGHLIGHT)

    def test_plain_message_activity(self) -> None:
        wire = joined()
        wire.state.switch(0)
        wire.feed(":bob!b@h JOIN #chat")
        buffer = wire.state.find("#chat")
        assert buffer is not None
        self.assertEqual(buffer.activity, Activity.EVENTS)
        wire.feed(":bob!b@h PRIVMSG #chat :malice is not a mention")
        self.assertEqual(buffer.activity, Activity.MESSAGES)

    def test_action(self) -> None:
        wire = joined()
        wire.feed(":bob!b@h PRIVMSG #chat :\x01ACTION waves\x01")
        line = wire.state.find("#chat").lines[-1]  # type: ignore[union-attr]
        self.assertEqual((line.kind, line.text), (Kind.ACTION, "waves"))

    def test_ctcp_version_is_answered(self) -> None:
        wire = joined()
        wire.feed(":bob!b@h PRIVMSG alice :\x01VERSION\x01")
        self.assertEqual(
            wire.sent(), ["NOTICE bob :\x01VERSION chat-server terminal client\x01"]
        )
        self.assertIsNone(wire.state.find("bob"))

    def test_statusmsg_goes_to_the_channel(self) -> None:
        wire = joined()
        wire.feed(":bob!b@h NOTICE @#chat :ops only")
        self.assertEqual(wire.lines("#chat")[-1], "ops only")

    def test_server_notice_goes_to_server_buffer(self) -> None:
        wire = joined()
        wire.feed(":srv.example NOTICE alice :*** Server restarting")
        self.assertEqual(wire.lines()[-1], "*** Server restarting")

    def test_user_notice_goes_to_current_buffer(self) -> None:
        wire = joined()
        wire.feed(":NickServ!s@services NOTICE alice :Please identify")
        self.assertEqual(wire.lines("#chat")[-1], "Please identify")

    def test_formatting_is_stripped(self) -> None:
        wire = joined()
        wire.feed(":bob!b@h PRIVMSG #chat :\x02bold\x02 \x0304,01red\x03 done\x07")
        self.assertEqual(wire.lines("#chat")[-1], "bold red done")

    def test_server_time_is_used(self) -> None:
        wire = joined()
        wire.feed("@time=2026-01-02T03:04:05.500Z :bob!b@h PRIVMSG #chat :old")
        line = wire.state.find("#chat").lines[-1]  # type: ignore[union-attr]
        self.assertEqual(line.time, 1767323045.5)


class EchoTests(TestCase):
    def test_without_echo_message_own_lines_show_at_once(self) -> None:
        wire = joined()
        wire.session.say("#chat", "hello")
        self.assertEqual(wire.sent(), ["PRIVMSG #chat :hello"])
        line = wire.state.find("#chat").lines[-1]  # type: ignore[union-attr]
        self.assertTrue(line.own)
        self.assertEqual(line.text, "hello")

    def test_with_echo_message_own_lines_show_once(self) -> None:
        wire = joined(caps="echo-message")
        wire.session.say("#chat", "hello")
        self.assertEqual(wire.sent(), ["PRIVMSG #chat :hello"])
        self.assertNotIn("hello", wire.lines("#chat"))
        wire.feed(":alice!a@h PRIVMSG #chat :hello")
        self.assertEqual(wire.lines("#chat").count("hello"), 1)
        self.assertTrue(wire.state.find("#chat").lines[-1].own)  # type: ignore[union-attr]

    def test_echoed_private_message_goes_to_the_query(self) -> None:
        wire = joined(caps="echo-message")
        wire.feed(":alice!a@h PRIVMSG bob :secret")
        self.assertEqual(wire.lines("bob"), ["secret"])


class MembershipTests(TestCase):
    def test_names_sorted_by_prefix_then_nick(self) -> None:
        wire = joined()
        wire.feed(
            ":srv 353 alice = #chat :zed @@bad ~&owner +Amy %half @bob",
            ":srv 366 alice #chat :End",
        )
        buffer = wire.state.find("#chat")
        assert buffer is not None
        order = [m.nick for m in buffer.sorted_members(wire.state.prefix_chars)]
        self.assertEqual(order, ["owner", "bad", "bob", "half", "Amy", "zed"])

    def test_join_part_quit_nick_kick(self) -> None:
        wire = joined()
        members = wire.state.find("#chat").members  # type: ignore[union-attr]
        wire.feed(":dave!d@host JOIN #chat")
        self.assertIn("dave", members)
        self.assertEqual(wire.lines("#chat")[-1], "dave joined (d@host)")
        wire.feed(":dave!d@host NICK :david")
        self.assertEqual(wire.lines("#chat")[-1], "dave is now known as david")
        self.assertIn("david", members)
        wire.feed(":david!d@host PART #chat :bye")
        self.assertEqual(wire.lines("#chat")[-1], "david left (bye)")
        self.assertNotIn("david", members)
        wire.feed(":carol!c@h QUIT :Ping timeout")
        self.assertEqual(wire.lines("#chat")[-1], "carol quit (Ping timeout)")
        self.assertNotIn("carol", members)
        wire.feed(":bob!b@h KICK #chat alice :behave")
        line = wire.state.find("#chat").lines[-1]  # type: ignore[union-attr]
        self.assertEqual(line.text, "bob kicked you (behave)")
        self.assertTrue(line.highlight)
        self.assertFalse(wire.state.find("#chat").joined)  # type: ignore[union-attr]

    def test_extended_join(self) -> None:
        wire = joined(caps="extended-join")
        wire.feed(":dave!d@host JOIN #chat dave_acct :Dave Real")
        member = wire.state.find("#chat").members["dave"]  # type: ignore[union-attr]
        self.assertEqual(member.account, "dave_acct")
        self.assertIn("[Dave Real]", wire.lines("#chat")[-1])

    def test_quit_also_reaches_the_query(self) -> None:
        wire = joined()
        wire.feed(":bob!b@h PRIVMSG alice :hi", ":bob!b@h QUIT :gone")
        self.assertEqual(wire.lines("bob")[-1], "bob quit (gone)")

    def test_own_nick_change(self) -> None:
        wire = joined()
        wire.feed(":alice!a@h NICK alicia")
        self.assertEqual(wire.state.nick, "alicia")
        self.assertEqual(wire.lines()[-1], "You are now known as alicia")

    def test_mode_changes_prefixes(self) -> None:
        wire = joined()
        wire.feed(":bob!b@h MODE #chat +ov-v carol carol carol")
        members = wire.state.find("#chat").members  # type: ignore[union-attr]
        self.assertEqual(members["carol"].prefixes, "@")
        self.assertEqual(
            wire.lines("#chat")[-1], "bob sets mode +ov-v carol carol carol"
        )
        wire.feed(":bob!b@h MODE #chat +kv secret carol")
        self.assertEqual(members["carol"].prefixes, "@+")

    def test_user_mode(self) -> None:
        wire = joined()
        wire.feed(":alice MODE alice :+iw")
        self.assertEqual(wire.state.status.user_modes, "iw")

    def test_topic(self) -> None:
        wire = joined()
        buffer = wire.state.find("#chat")
        assert buffer is not None
        self.assertEqual(buffer.topic, "Welcome to chat")
        wire.feed(":bob!b@h TOPIC #chat :New topic")
        self.assertEqual(buffer.topic, "New topic")
        self.assertEqual(wire.lines("#chat")[-1], "bob changed the topic to: New topic")

    def test_away_notify(self) -> None:
        wire = joined(caps="away-notify")
        wire.feed(":bob!b@h AWAY :lunch")
        self.assertTrue(wire.state.find("#chat").members["bob"].away)  # type: ignore[union-attr]
        wire.feed(":bob!b@h AWAY")
        self.assertFalse(wire.state.find("#chat").members["bob"].away)  # type: ignore[union-attr]

    def test_account_notify(self) -> None:
        wire = joined(caps="account-notify")
        wire.feed(":bob!b@h ACCOUNT bobby")
        member = wire.state.find("#chat").members["bob"]  # type: ignore[union-attr]
        self.assertEqual(member.account, "bobby")
        wire.feed(":bob!b@h ACCOUNT *")
        self.assertIsNone(member.account)

    def test_invite(self) -> None:
        wire = joined()
        wire.feed(":bob!b@h INVITE alice #secret")
        line = wire.state.current.lines[-1]
        self.assertEqual(line.text, "bob invites you to #secret (type /join #secret)")
        self.assertTrue(line.highlight)


class NumericTests(TestCase):
    def test_channel_error_goes_to_the_channel(self) -> None:
        wire = joined()
        wire.state.switch(0)
        wire.feed(":srv 482 alice #chat :You're not channel operator")
        line = wire.state.find("#chat").lines[-1]  # type: ignore[union-attr]
        self.assertEqual(
            (line.kind, line.text), (Kind.ERROR, "#chat: You're not channel operator")
        )

    def test_unknown_target_error_goes_to_current(self) -> None:
        wire = joined()
        wire.feed(":srv 401 alice nobody :No such nick/channel")
        self.assertEqual(wire.lines("#chat")[-1], "nobody: No such nick/channel")

    def test_whois_in_words_in_current_buffer(self) -> None:
        wire = joined()
        wire.feed(
            ":srv 311 alice bob ~b host * :Bob Builder",
            ":srv 319 alice bob :@#chat #other",
            ":srv 317 alice bob 3725 1700000000 :seconds idle, signon time",
            ":srv 318 alice bob :End of /WHOIS list",
        )
        lines = wire.lines("#chat")[-3:]
        self.assertEqual(lines[0], "bob is ~b@host (Bob Builder)")
        self.assertEqual(lines[1], "bob is on @#chat #other")
        self.assertTrue(lines[2].startswith("bob has been idle 1h 2m 5s, signed on"))

    def test_labeled_reply_goes_to_the_asking_buffer(self) -> None:
        wire = joined(caps="labeled-response batch")
        query = wire.state.open("bob")
        wire.session.send("WHOIS", "bob", origin=query)
        self.assertEqual(wire.sent(), ["@label=c1 WHOIS bob"])
        wire.feed(
            "@label=c1 :srv BATCH +x labeled-response",
            "@batch=x :srv 311 alice bob ~b host * :Bob",
            "@batch=x :srv 318 alice bob :End",
            ":srv BATCH -x",
        )
        self.assertEqual(wire.lines("bob"), ["bob is ~b@host (Bob)"])

    def test_list_answer_stays_in_the_buffer_it_was_typed_in(self) -> None:
        wire = joined()
        wire.feed(":alice!a@h JOIN #two")
        wire.state.switch(0)
        commands.run(wire.session, "/list")
        self.assertIn("LIST", wire.sent())
        wire.feed(
            ":srv 321 alice Channel :Users  Name",
            ":srv 322 alice #chat 3 :Welcome to chat",
            ":srv 322 alice #two 1 :",
            ":srv 323 alice :End of LIST",
        )
        self.assertEqual(
            wire.lines()[-4:],
            [
                "Channels (name, users, topic):",
                "#chat  3 users  Welcome to chat",
                "#two  1 users  ",
                "End of channel list",
            ],
        )
        self.assertFalse(any(t.startswith("#chat  ") for t in wire.lines("#chat")))
        self.assertEqual(wire.lines("#two"), ["You joined #two"])
        self.assertEqual(wire.session.asked, [])

    def test_replies_go_to_each_asking_buffer_in_order(self) -> None:
        wire = joined()
        query = wire.state.open("bob")
        wire.session.send("WHOIS", "bob", origin=query)
        wire.session.send("MODE", "#chat", origin=wire.state.server_buffer)
        wire.feed(
            ":srv 311 alice bob ~b host * :Bob",
            ":srv 318 alice bob :End",
            ":srv 324 alice #chat +nt",
            ":srv 329 alice #chat 1700000000",
        )
        self.assertEqual(wire.lines("bob"), ["bob is ~b@host (Bob)"])
        self.assertIn("Modes of #chat: +nt", wire.lines())
        self.assertEqual(wire.session.asked, [])

    def test_names_of_another_channel_in_words(self) -> None:
        wire = joined()
        wire.feed(":srv 353 alice = #other :@zed amy", ":srv 366 alice #other :End")
        self.assertEqual(wire.lines("#chat")[-1], "People on #other: @zed amy")

    def test_motd_and_lusers_in_server_buffer(self) -> None:
        wire = joined()
        wire.feed(
            ":srv 372 alice :- Hello",
            ":srv 252 alice 3 :operator(s) online",
            ":srv 265 alice 1 4 :Current local users 1, max 4",
        )
        self.assertEqual(
            wire.lines()[-3:],
            ["- Hello", "3 operator(s) online", "Current local users 1, max 4"],
        )

    def test_away_replies_set_status(self) -> None:
        wire = joined()
        wire.feed(":srv 306 alice :You have been marked as being away")
        self.assertTrue(wire.state.status.away)
        wire.feed(":srv 305 alice :You are no longer marked as being away")
        self.assertFalse(wire.state.status.away)

    def test_standard_reply(self) -> None:
        wire = joined()
        wire.feed(":srv FAIL CHATHISTORY INVALID_TARGET #x :No such channel")
        line = wire.state.current.lines[-1]
        self.assertEqual(
            (line.kind, line.text),
            (Kind.ERROR, "CHATHISTORY: No such channel (INVALID_TARGET)"),
        )


class HistoryTests(TestCase):
    def test_join_requests_history_and_batch_fills_buffer(self) -> None:
        wire = Wire()
        wire.clock.advance(1_800_000_000)
        wire.register(caps="batch server-time chathistory")
        wire.feed(":alice!a@h JOIN #chat")
        self.assertIn("CHATHISTORY LATEST #chat * 50", wire.sent())
        wire.feed(
            ":srv BATCH +h chathistory #chat",
            "@batch=h;time=2026-01-01T10:00:00.000Z :bob!b@h PRIVMSG #chat :early",
            "@batch=h;time=2026-01-01T10:01:00.000Z "
            ":carol!c@h PRIVMSG #chat :alice: later",
            ":srv BATCH -h",
        )
        buffer = wire.state.find("#chat")
        assert buffer is not None
        texts = [line.text for line in buffer.lines]
        self.assertEqual(texts[:2], ["early", "alice: later"])
        self.assertTrue(all(line.history for line in list(buffer.lines)[:2]))
        self.assertFalse(buffer.lines[1].highlight)

    def test_scrolling_up_asks_for_older_lines(self) -> None:
        wire = Wire()
        wire.clock.advance(1_800_000_000)
        wire.register(caps="batch server-time chathistory")
        wire.feed(
            ":alice!a@h JOIN #chat",
            "@time=2026-01-01T10:00:00.000Z :bob!b@h PRIVMSG #chat :x",
        )
        wire.sent()
        buffer = wire.state.find("#chat")
        assert buffer is not None
        self.assertTrue(wire.session.request_older(buffer))
        self.assertEqual(
            wire.sent(),
            ["CHATHISTORY BEFORE #chat timestamp=2026-01-01T10:00:00.000Z 50"],
        )
        self.assertFalse(wire.session.request_older(buffer))  # one at a time
        wire.feed(":srv BATCH +e chathistory #chat", ":srv BATCH -e")
        self.assertTrue(buffer.history_exhausted)
        self.assertFalse(wire.session.request_older(buffer))
