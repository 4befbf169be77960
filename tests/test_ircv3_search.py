"""soju.im/search: SEARCH over the history a user may read."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chat.commands.capabilities import SUPPORTED_CAPS
from chat.commands.search import parse_attributes
from chat.history import QUERY_LIMIT
from tests.ircv3_support import with_caps
from tests.support import Harness

CAPS = ("soju.im/search", "batch", "message-tags", "server-time")


class SearchTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.alice, self.bob, self.carol = self.harness.channel_of(
            "alice", "bob", "carol"
        )
        self.carol.send("JOIN #secret")
        self.bob.send("PRIVMSG #chan :hello world")
        self.harness.clock.advance(10)
        self.carol.send("PRIVMSG #chan :world peace")
        self.carol.send("PRIVMSG #secret :world domination")
        self.bob.send("PRIVMSG alice :private world")
        self.bob.send("PRIVMSG carol :not for alice, world")
        for client in (self.alice, self.bob, self.carol):
            client.raw()
        with_caps(self.alice, *CAPS)

    def results(self, attributes: str) -> list[tuple[str, ...]]:
        self.alice.send(f"SEARCH {attributes}")
        messages = self.alice.messages()
        self.assertEqual(messages[0].command, "BATCH")
        self.assertEqual(messages[0].params[1:], ("soju.im/search",))
        ref = messages[0].params[0][1:]
        self.assertEqual(messages[-1].params, (f"-{ref}",))
        inner = messages[1:-1]
        self.assertTrue(all(m.tags.get("batch") == ref for m in inner))
        self.assertTrue(all("msgid" in m.tags and "time" in m.tags for m in inner))
        return [m.params for m in inner]

    def test_text_in_a_channel(self) -> None:
        self.assertEqual(
            self.results("in=#chan;text=world"),
            [("#chan", "hello world"), ("#chan", "world peace")],
        )
        self.assertIn("soju.im/search", SUPPORTED_CAPS)

    def test_everything_one_may_read(self) -> None:
        self.assertEqual(
            self.results("text=world"),
            [
                ("#chan", "hello world"),
                ("#chan", "world peace"),
                ("alice", "private world"),
            ],
        )

    def test_from_time_and_limit(self) -> None:
        self.assertEqual(
            self.results("from=CAROL;text=world"), [("#chan", "world peace")]
        )
        self.assertEqual(
            self.results("in=#chan;before=1970-01-01T00:00:05.000Z"),
            [("#chan", "hello world")],
        )
        self.assertEqual(
            self.results("in=#chan;after=1970-01-01T00:00:05.000Z"),
            [("#chan", "world peace")],
        )
        self.assertEqual(self.results("in=#chan;limit=1"), [("#chan", "world peace")])
        self.assertEqual(
            self.results("in=bob;text=private"), [("alice", "private world")]
        )

    def test_not_what_one_may_not_read(self) -> None:
        self.alice.send("SEARCH in=#secret;text=world", "SEARCH in=*")
        self.assertEqual(
            [m.params for m in self.alice.messages()],
            [("SEARCH", "INVALID_PARAMS", "in", "Messages could not be retrieved")] * 2,
        )

    def test_bad_attributes(self) -> None:
        self.alice.send("SEARCH after=yesterday", "SEARCH limit=0", "SEARCH limit=x")
        self.assertEqual(
            [m.params[1:3] for m in self.alice.messages()],
            [("INVALID_PARAMS", name) for name in ("after", "limit", "limit")],
        )

    def test_without_batch_the_lines_come_alone(self) -> None:
        self.carol.send("CAP REQ soju.im/search")
        self.carol.raw()
        self.carol.send("SEARCH in=#secret")
        self.assertEqual(self.carol.commands(), ["PRIVMSG"])

    def test_labeled(self) -> None:
        with_caps(self.alice, "labeled-response")
        self.alice.send("@label=s1 SEARCH in=#chan;text=peace")
        messages = self.alice.messages()
        self.assertEqual(messages[0].tags.get("label"), "s1")
        self.assertEqual(messages[0].params[1], "soju.im/search")

    def test_attributes(self) -> None:
        self.assertEqual(
            parse_attributes(r"text=a\sb\:c;in=#x;;limit"),
            {"text": "a b;c", "in": "#x", "limit": ""},
        )
        self.assertEqual(QUERY_LIMIT, 100)
