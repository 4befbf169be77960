"""Slash commands typed in the input line become the right IRC lines."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chat.client import commands
from chat.client.model import Buffer, Kind
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
