"""Tests for chat.message: parsing and serializing IRC lines."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from chat.message import (
    Message,
    MessageParseError,
    escape_tag_value,
    parse,
    unescape_tag_value,
)


class ParseTests(TestCase):
    def test_command_only(self) -> None:
        self.assertEqual(parse("quit"), Message("QUIT"))

    def test_params_and_trailing(self) -> None:
        msg = parse("PRIVMSG #chan :hello there")
        self.assertEqual(msg.command, "PRIVMSG")
        self.assertEqual(msg.params, ("#chan", "hello there"))

    def test_source(self) -> None:
        msg = parse(":nick!user@host JOIN #chan")
        self.assertEqual(msg.source, "nick!user@host")
        self.assertEqual(msg.params, ("#chan",))

    def test_empty_trailing(self) -> None:
        self.assertEqual(parse("TOPIC #a :").params, ("#a", ""))

    def test_trailing_with_colons(self) -> None:
        self.assertEqual(parse("PRIVMSG a ::-) :x").params, ("a", ":-) :x"))

    def test_extra_spaces(self) -> None:
        self.assertEqual(parse("  NICK   bob  ").params, ("bob",))

    def test_tags(self) -> None:
        msg = parse("@+draft/reply=abc;time=2020-01-01T00:00:00.000Z;flag PING x")
        self.assertEqual(
            dict(msg.tags),
            {"+draft/reply": "abc", "time": "2020-01-01T00:00:00.000Z", "flag": ""},
        )

    def test_escaped_tag(self) -> None:
        msg = parse(r"@k=a\sb\:c\\d\ne TAGMSG #x")
        self.assertEqual(msg.tags["k"], "a b;c\\d\ne")

    def test_missing_command(self) -> None:
        for line in ("", "   ", ":src", ":src ", "@a=b", "@a=b :src", ":x :y"):
            with self.subTest(line=line):
                self.assertRaises(MessageParseError, parse, line)

    def test_nul_rejected(self) -> None:
        self.assertRaises(MessageParseError, parse, "PRIVMSG #a :x\0y")

    def test_empty_tag_name(self) -> None:
        self.assertRaises(MessageParseError, parse, "@=x PING a")


class SerializeTests(TestCase):
    def test_plain(self) -> None:
        self.assertEqual(Message("NICK", ("bob",)).to_bytes(), b"NICK bob\r\n")

    def test_trailing_when_needed(self) -> None:
        for param, wire in (("a b", ":a b"), ("", ":"), (":x", "::x"), ("x", "x")):
            with self.subTest(param=param):
                self.assertEqual(Message("X", (param,)).to_line(), "X " + wire)

    def test_force_trailing(self) -> None:
        self.assertEqual(Message("X", ("a",)).to_line(force_trailing=True), "X :a")

    def test_text_of_messages_is_always_trailing(self) -> None:
        for message, line in [
            (Message("PRIVMSG", ("#c", "hello")), "PRIVMSG #c :hello"),
            (Message("NOTICE", ("bob", "hi")), "NOTICE bob :hi"),
            (Message("PART", ("#c", "bye")), "PART #c :bye"),
            (Message("PART", ("#c",)), "PART #c"),
            (Message("QUIT", ("gone",)), "QUIT :gone"),
            (Message("KICK", ("#c", "bob", "out")), "KICK #c bob :out"),
            (Message("KICK", ("#c", "bob")), "KICK #c bob"),
            (Message("TOPIC", ("#c", "news")), "TOPIC #c :news"),
            (Message("AWAY", ("lunch",)), "AWAY :lunch"),
            (Message("AWAY", ()), "AWAY"),
            (Message("JOIN", ("#c",)), "JOIN #c"),
            (Message("PING", ("token",)), "PING token"),
        ]:
            self.assertEqual(message.to_line(), line)

    def test_source_and_tags(self) -> None:
        msg = Message("PRIVMSG", ("#a", "hi"), "n!u@h", {"time": "t", "x": "a;b"})
        self.assertEqual(msg.to_line(), r"@time=t;x=a\:b :n!u@h PRIVMSG #a :hi")

    def test_with_tags(self) -> None:
        msg = Message("PING", ("x",)).with_tags({"a": "1"})
        self.assertEqual(msg.to_line(), "@a=1 PING x")


_word = st.text(
    alphabet=st.characters(
        blacklist_characters=" \r\n\0:", blacklist_categories=("Cs",)
    ),
    min_size=1,
    max_size=20,
)
_trailing = st.text(
    alphabet=st.characters(blacklist_characters="\r\n\0", blacklist_categories=("Cs",)),
    max_size=40,
)
_tag_key = st.from_regex(r"\+?[a-z][a-z0-9/.-]{0,10}", fullmatch=True)


class RoundTripProperties(TestCase):
    @given(
        command=st.from_regex(r"[A-Z]{1,10}|[0-9]{3}", fullmatch=True),
        middle=st.lists(_word.filter(lambda w: not w.startswith("@")), max_size=5),
        last=_trailing,
        source=st.none() | _word,
        tags=st.dictionaries(_tag_key, _trailing, max_size=4),
    )
    def test_round_trip(
        self,
        command: str,
        middle: list[str],
        last: str,
        source: str | None,
        tags: dict[str, str],
    ) -> None:
        msg = Message(command, (*middle, last), source, tags)
        self.assertEqual(parse(msg.to_line()), msg)

    @given(_trailing)
    def test_tag_escape_round_trip(self, value: str) -> None:
        self.assertEqual(unescape_tag_value(escape_tag_value(value)), value)

    @given(st.text(max_size=200))
    def test_parse_never_raises_anything_else(self, line: str) -> None:
        with contextlib.suppress(MessageParseError):
            parse(line)
