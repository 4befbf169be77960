"""Slash commands typed in the input line become the right IRC lines."""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import TestCase

from chat.client import commands
from chat.client.connection import Session
from chat.client.model import Activity, Buffer, Kind
from chat.client.networks import Networks, single
from tests.client_support import Wire


def in_channel() -> Wire:
    wire = Wire()
    wire.register()
    wire.feed(
        ":alice!a@h JOIN #chat",
        ":srv 353 alice = #chat :alice @bob",
        ":srv 366 alice #chat :End",
    )
    wire.state.switch(1)
    wire.sent()
    return wire


def typed(wire: Wire, text: str) -> list[str]:
    commands.run(wire.session, text)
    return wire.sent()


class CommandTests(TestCase):
    def test_plain_text_goes_to_the_current_buffer(self) -> None:
        wire = in_channel()
        self.assertEqual(typed(wire, "hello"), ["PRIVMSG #chat :hello"])
        self.assertEqual(
            typed(wire, "//not a command"), ["PRIVMSG #chat :/not a command"]
        )

    def test_plain_text_in_server_buffer_explains(self) -> None:
        wire = in_channel()
        wire.state.switch(0)
        self.assertEqual(typed(wire, "hello"), [])
        self.assertIn("/join #channel", wire.lines()[-1])

    def test_each_command(self) -> None:
        wire = in_channel()
        cases = {
            "/join #a,b key": ["JOIN #a,#b key"],
            "/part": ["PART #chat"],
            "/part #x going home": ["PART #x :going home"],
            "/msg bob hi there": ["PRIVMSG bob :hi there"],
            "/me waves": ["PRIVMSG #chat :\x01ACTION waves\x01"],
            "/notice bob psst": ["NOTICE bob :psst"],
            "/nick alicia": ["NICK alicia"],
            "/topic": ["TOPIC #chat"],
            "/topic New topic": ["TOPIC #chat :New topic"],
            "/names #other": ["NAMES #other"],
            "/whois bob": ["WHOIS bob"],
            "/who": ["WHO #chat"],
            "/list": ["LIST"],
            "/away lunch": ["AWAY :lunch"],
            "/back": ["AWAY"],
            "/invite carol": ["INVITE carol #chat"],
            "/kick bob be nice": ["KICK #chat bob :be nice"],
            "/mode +m": ["MODE #chat +m"],
            "/quote PRIVMSG bob :raw line": ["PRIVMSG bob :raw line"],
        }
        for text, expected in cases.items():
            wire.state.switch(1)
            self.assertEqual(typed(wire, text), expected, text)

    def test_names_of_a_joined_channel_are_shown_locally(self) -> None:
        wire = in_channel()
        self.assertEqual(typed(wire, "/names"), [])
        self.assertEqual(wire.lines("#chat")[-1], "People on #chat: @bob alice")

    def test_query_opens_and_switches(self) -> None:
        wire = in_channel()
        self.assertEqual(typed(wire, "/query bob hi"), ["PRIVMSG bob :hi"])
        self.assertEqual(wire.state.current.name, "bob")
        self.assertEqual(wire.state.current.kind, Buffer.QUERY)
        self.assertEqual(wire.lines("bob"), ["hi"])

    def test_me_shows_an_action(self) -> None:
        wire = in_channel()
        typed(wire, "/me waves")
        line = wire.state.current.lines[-1]
        self.assertEqual((line.kind, line.text, line.own), (Kind.ACTION, "waves", True))

    def test_join_switches_when_joined(self) -> None:
        wire = in_channel()
        typed(wire, "/join #new")
        wire.feed(":alice!a@h JOIN #new")
        self.assertEqual(wire.state.current.name, "#new")

    def test_close_parts_and_removes(self) -> None:
        wire = in_channel()
        self.assertEqual(typed(wire, "/close"), ["PART #chat"])
        self.assertIsNone(wire.state.find("#chat"))
        self.assertEqual(wire.state.current.name, "server")

    def test_clear_and_buffer(self) -> None:
        wire = in_channel()
        typed(wire, "/clear")
        self.assertEqual(wire.lines("#chat"), [])
        typed(wire, "/buffer 1")
        self.assertEqual(wire.state.active, 0)
        typed(wire, "/buffer #chat")
        self.assertEqual(wire.state.active, 1)
        typed(wire, "/buffer 9")
        self.assertIn("No buffer '9'", wire.lines("#chat")[-1])

    def test_help(self) -> None:
        wire = in_channel()
        typed(wire, "/help kick")
        self.assertEqual(
            wire.lines("#chat")[-1],
            "/kick [#channel] nick [reason] - Remove someone from a channel",
        )
        typed(wire, "/help")
        text = "\n".join(wire.lines("#chat"))
        for name in commands.COMMANDS:
            self.assertIn(f"/{name}", text)

    def test_unknown_command_and_usage(self) -> None:
        wire = in_channel()
        typed(wire, "/frobnicate")
        self.assertIn("Unknown command /frobnicate", wire.lines("#chat")[-1])
        typed(wire, "/msg bob")
        self.assertEqual(wire.lines("#chat")[-1], "Usage: /msg target text")

    def test_quit(self) -> None:
        wire = in_channel()
        quits: list[bool] = []
        wire.session.on_quit = lambda: quits.append(True)
        self.assertEqual(typed(wire, "/quit see you"), ["QUIT :see you"])
        self.assertEqual(quits, [True])

    def test_not_connected(self) -> None:
        wire = in_channel()
        wire.session.protocol = None
        self.assertEqual(typed(wire, "/whois bob"), [])
        self.assertEqual(wire.lines("#chat")[-1], "Not connected")

    def test_long_message_is_split(self) -> None:
        wire = in_channel()
        sent = typed(wire, "word " * 200)
        self.assertEqual(len(sent), 3)
        self.assertTrue(all(len(line.encode()) < 512 for line in sent))


class OperatorCommandTests(TestCase):
    def test_op_deop_voice_devoice(self) -> None:
        wire = in_channel()
        self.assertEqual(typed(wire, "/op bob carol"), ["MODE #chat +oo bob carol"])
        self.assertEqual(typed(wire, "/deop bob"), ["MODE #chat -o bob"])
        self.assertEqual(
            typed(wire, "/voice #other a b c d"),
            ["MODE #other +vvv a b c", "MODE #other +v d"],
        )
        self.assertEqual(typed(wire, "/devoice a"), ["MODE #chat -v a"])
        self.assertEqual(typed(wire, "/op"), [])
        self.assertIn("Usage: /op", wire.lines("#chat")[-1])

    def test_ban_unban_kickban(self) -> None:
        wire = in_channel()
        self.assertEqual(typed(wire, "/ban bob"), ["MODE #chat +b bob!*@*"])
        self.assertEqual(
            typed(wire, "/unban *!*@evil.example"), ["MODE #chat -b *!*@evil.example"]
        )
        self.assertEqual(
            typed(wire, "/kickban bob spamming links"),
            ["MODE #chat +b bob!*@*", "KICK #chat bob :spamming links"],
        )


class CtcpCommandTests(TestCase):
    def test_ctcp_version_and_ping(self) -> None:
        wire = in_channel()
        self.assertEqual(
            typed(wire, "/ctcp bob version"), ["PRIVMSG bob :\x01VERSION\x01"]
        )
        wire.clock.advance(100)
        wire.sent()
        self.assertEqual(
            typed(wire, "/ctcp bob PING"), ["PRIVMSG bob :\x01PING 100.000\x01"]
        )
        wire.clock.advance(0.25)
        wire.feed(":bob!b@h NOTICE alice :\x01PING 100.000\x01")
        self.assertEqual(wire.lines("#chat")[-1], "CTCP PING reply from bob: 0.250 s")

    def test_ctcp_ping_is_answered(self) -> None:
        wire = in_channel()
        wire.feed(":bob!b@h PRIVMSG alice :\x01PING 12345\x01")
        self.assertEqual(wire.sent(), ["NOTICE bob :\x01PING 12345\x01"])


class IgnoreCommandTests(TestCase):
    def test_ignore_hides_and_persists(self) -> None:
        state_dir = Path(self.mktemp())
        wire = Wire(nick="alice", state_dir=state_dir)
        wire.register()
        wire.feed(":alice!a@h JOIN #chat")
        wire.state.switch(1)
        typed(wire, "/ignore Bob")
        self.assertEqual((state_dir / "ignores").read_text(), "Bob!*@*\n")
        wire.feed(
            ":bob!b@h PRIVMSG #chat :spam",
            ":bob!b@h PRIVMSG alice :more spam",
            ":carol!c@h PRIVMSG #chat :hello",
        )
        self.assertNotIn("spam", wire.lines("#chat"))
        self.assertIsNone(wire.state.find("bob"))
        self.assertIn("hello", wire.lines("#chat"))
        typed(wire, "/ignore *!*@evil.example")

        again = Wire(nick="alice", state_dir=state_dir)
        again.register()
        again.feed(
            ":alice!a@h JOIN #chat",
            ":bob!b@h PRIVMSG #chat :still spam",
            ":mallory!m@evil.example PRIVMSG #chat :evil",
            ":carol!c@h PRIVMSG #chat :hi",
        )
        self.assertEqual(again.lines("#chat")[-1], "hi")
        again.state.switch(1)
        typed(again, "/ignore")
        self.assertEqual(
            again.lines("#chat")[-2:],
            ["Ignoring Bob!*@*", "Ignoring *!*@evil.example"],
        )
        typed(again, "/unignore bob")
        self.assertEqual(again.lines("#chat")[-1], "No longer ignoring Bob!*@*")
        again.feed(":bob!b@h PRIVMSG #chat :forgiven")
        self.assertEqual(again.lines("#chat")[-1], "forgiven")
        self.assertEqual((state_dir / "ignores").read_text(), "*!*@evil.example\n")

    def test_brackets_in_nicks_match_themselves(self) -> None:
        wire = Wire(nick="alice", state_dir=Path(self.mktemp()))
        wire.register()
        typed(wire, "/ignore [bot]")
        wire.feed(":b!x@h PRIVMSG alice :not the bot", ":[bot]!x@h PRIVMSG alice :bot")
        self.assertEqual(wire.lines("b"), ["not the bot"])
        self.assertIsNone(wire.state.find("[bot]"))


class SearchCommandTests(TestCase):
    def test_search_needs_the_capability(self) -> None:
        wire = in_channel()
        self.assertEqual(typed(wire, "/search hello"), [])
        self.assertEqual(
            wire.lines("#chat")[-1],
            "This server does not offer search (no soju.im/search capability)",
        )

    def test_search_results_in_the_current_buffer(self) -> None:
        wire = Wire()
        wire.register(caps="batch server-time soju.im/search")
        wire.feed(":alice!a@h JOIN #chat", ":alice!a@h JOIN #ops")
        wire.state.switch(1)
        wire.sent()
        self.assertEqual(
            typed(wire, "/search deploy; friday"),
            ["SEARCH text=deploy\\:\\sfriday;limit=50;in=#chat"],
        )
        wire.feed(
            ":srv BATCH +s soju.im/search",
            "@batch=s;time=2026-01-02T10:00:00.000Z :bob!b@h PRIVMSG #chat"
            " :deploy; friday ok?",
            "@batch=s;time=2026-01-03T10:00:00.000Z :bob!b@h PRIVMSG #chat"
            " :\x01ACTION deploy; friday\x01",
            ":srv BATCH -s",
        )
        self.assertEqual(
            wire.lines("#chat")[-3:],
            [
                "#chat <bob> deploy; friday ok?",
                "#chat <bob> * deploy; friday",
                "Search: 2 results",
            ],
        )
        self.assertEqual(wire.lines("#ops"), ["You joined #ops"])
        self.assertEqual(
            typed(wire, "/search #ops x"), ["SEARCH text=x;limit=50;in=#ops"]
        )


class NetworkCommandTests(TestCase):
    def test_connect_needs_a_host_and_a_numeric_port(self) -> None:
        wire = in_channel()
        typed(wire, "/connect")
        self.assertEqual(wire.lines("#chat")[-1], "Usage: /connect host [port]")
        typed(wire, "/connect irc.example.org six")
        self.assertEqual(wire.lines("#chat")[-1], "Usage: /connect host [port]")
        typed(wire, "/connect irc.example.org 6697")
        self.assertEqual(
            wire.lines("#chat")[-1], "This client cannot open more connections"
        )

    def test_the_only_network_is_left_with_quit(self) -> None:
        wire = in_channel()
        single(wire.session)
        typed(wire, "/disconnect")
        self.assertEqual(
            wire.lines("#chat")[-1],
            "This is the only network; /quit leaves the client",
        )
        typed(wire, "/server")
        self.assertEqual(
            wire.lines("#chat")[-1],
            "1: srv (irc.test:6697, connected, TLS, checking the certificate)",
        )

    def test_connect_and_server_pass_on_no_secrets(self) -> None:
        wire = Wire(
            nick="alice",
            password="server-pass",
            sasl_user="alice",
            sasl_password="sasl-pass",
        )
        wire.register()
        opened: list[Session] = []
        networks = Networks(wire.clock, lambda session, _: opened.append(session))
        networks.add(wire.session)
        typed(wire, "/connect other.example 7000")
        (other,) = opened
        config = other.config
        self.assertEqual(
            (config.host, config.port, config.nick), ("other.example", 7000, "alice")
        )
        self.assertEqual(
            (config.password, config.sasl_user, config.sasl_password),
            (None, None, None),
        )
        self.assertIs(networks.current_session, other)
        commands.run(other, "/server third.example")
        self.assertEqual(len(opened), 2)
        self.assertEqual(
            (opened[1].config.host, opened[1].config.port), ("third.example", 7000)
        )
        self.assertEqual(networks.sessions, [wire.session, opened[1]])


class MultilinePasteTests(TestCase):
    def multiline_wire(self) -> Wire:
        wire = Wire()
        wire.feed(
            ":srv CAP * LS :batch draft/multiline=max-bytes=4096,max-lines=2",
            ":srv CAP * ACK :batch draft/multiline",
            ":srv 001 alice :Welcome",
            ":alice!a@h JOIN #chat",
        )
        wire.state.switch(1)
        wire.sent()
        return wire

    def test_a_paste_goes_as_multiline_batches_within_the_limits(self) -> None:
        wire = self.multiline_wire()
        wire.session.say_lines("#chat", ["one", "two", "three"])
        self.assertEqual(
            wire.sent(),
            [
                "BATCH +m1 draft/multiline #chat",
                "@batch=m1 PRIVMSG #chat :one",
                "@batch=m1 PRIVMSG #chat :two",
                "BATCH -m1",
                "PRIVMSG #chat :three",
            ],
        )
        self.assertEqual(wire.lines("#chat")[-3:], ["one", "two", "three"])

    def test_without_the_capability_each_line_is_a_message(self) -> None:
        wire = in_channel()
        wire.session.say_lines("#chat", ["one", "two"])
        self.assertEqual(wire.sent(), ["PRIVMSG #chat :one", "PRIVMSG #chat :two"])


class ReadMarkerTests(TestCase):
    def marker_wire(self) -> Wire:
        wire = Wire()
        wire.register(caps="batch server-time draft/read-marker")
        wire.feed(":alice!a@h JOIN #chat")
        return wire

    def test_looking_at_a_buffer_marks_it_read_on_the_server(self) -> None:
        wire = self.marker_wire()
        wire.feed("@time=2026-01-02T10:00:00.250Z :bob!b@h PRIVMSG #chat :hi")
        wire.sent()
        wire.state.switch(1)
        self.assertEqual(
            wire.sent(), ["MARKREAD #chat timestamp=2026-01-02T10:00:00.250Z"]
        )
        wire.state.switch(0)
        wire.state.switch(1)
        self.assertEqual(wire.sent(), [], "nothing new: nothing to say")

    def test_read_on_another_client_clears_the_activity(self) -> None:
        wire = self.marker_wire()
        wire.feed("@time=2026-01-02T10:00:00.250Z :bob!b@h PRIVMSG #chat :hi")
        buffer = wire.state.find("#chat")
        assert buffer is not None
        self.assertNotEqual(buffer.activity, Activity.NONE)
        wire.feed(":srv MARKREAD #chat timestamp=2026-01-02T09:00:00.000Z")
        self.assertNotEqual(buffer.activity, Activity.NONE, "older: still unread")
        wire.feed(":srv MARKREAD #chat timestamp=2026-01-02T10:00:00.250Z")
        self.assertEqual(buffer.activity, Activity.NONE)

    def test_without_the_capability_nothing_is_sent(self) -> None:
        wire = in_channel()
        wire.feed(":bob!b@h PRIVMSG #chat :hi")
        wire.state.switch(0)
        wire.sent()
        wire.state.switch(1)
        self.assertEqual(wire.sent(), [])
