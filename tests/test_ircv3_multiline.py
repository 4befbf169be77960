"""draft/multiline: client batches delivered as one message."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chat.commands.capabilities import SUPPORTED_CAPS
from chat.history import HistoryItem, Query, conversation_key, party
from chat.message import Message
from chat.multiline import MAX_BYTES, MAX_LINES, MultilineBatch, MultilineError
from tests.ircv3_support import registered, with_caps
from tests.support import FakeClient, Harness

CAPS = ("draft/multiline", "batch", "message-tags")


def send_batch(client: FakeClient, target: str, *lines: str, label: str = "") -> None:
    """Send *lines* (a leading ``+`` marks a concat line) in one batch."""
    opening = f"@label={label} " if label else ""
    client.send(f"{opening}BATCH +m1 draft/multiline {target}")
    for line in lines:
        if line.startswith("+"):
            client.send(
                f"@batch=m1;draft/multiline-concat PRIVMSG {target} :{line[1:]}"
            )
        else:
            client.send(f"@batch=m1 PRIVMSG {target} :{line}")
    client.send("BATCH -m1")


class BatchRulesTests(TestCase):
    def test_combined_text(self) -> None:
        batch = MultilineBatch("r", "#c")
        batch.add("PRIVMSG", "#c", "hello", False)
        batch.add("PRIVMSG", "#c", " world", True)
        batch.add("PRIVMSG", "#c", "", False)
        batch.add("PRIVMSG", "#c", "bye", False)
        self.assertEqual(batch.combined(), "hello world\n\nbye")
        self.assertEqual(batch.size, len("hello world\n\nbye"))
        self.assertTrue(batch.valid())

    def test_limits_and_mistakes(self) -> None:
        batch = MultilineBatch("r", "#c")
        with self.assertRaises(MultilineError) as caught:
            batch.add("PRIVMSG", "#c", "x" * (MAX_BYTES + 1), False)
        self.assertEqual(caught.exception.code, "MULTILINE_MAX_BYTES")
        batch = MultilineBatch("r", "#c")
        for _ in range(MAX_LINES):
            batch.add("PRIVMSG", "#c", "x", False)
        with self.assertRaises(MultilineError) as caught:
            batch.add("PRIVMSG", "#c", "x", False)
        self.assertEqual(caught.exception.code, "MULTILINE_MAX_LINES")
        batch = MultilineBatch("r", "#c")
        for args, code in [
            (("PRIVMSG", "#d", "x", False), "MULTILINE_INVALID_TARGET"),
            (("PRIVMSG", "#c", "", True), "MULTILINE_INVALID"),
        ]:
            with self.assertRaises(MultilineError) as caught:
                batch.add(*args)
            self.assertEqual(caught.exception.code, code)
        blank = MultilineBatch("r", "#c")
        blank.add("PRIVMSG", "#c", "", False)
        self.assertFalse(blank.valid())


class MultilineTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.alice, self.bob, self.carol = self.harness.channel_of(
            "alice", "bob", "carol"
        )
        for client in (self.alice, self.bob):
            with_caps(client, *CAPS)

    def test_advertised_with_limits(self) -> None:
        self.assertEqual(
            SUPPORTED_CAPS["draft/multiline"],
            f"max-bytes={MAX_BYTES},max-lines={MAX_LINES}",
        )

    def test_channel_batch_and_fallback(self) -> None:
        send_batch(self.alice, "#chan", "hello", "+ world", "", "second")
        self.assertEqual(self.alice.lines(), [])
        got = self.bob.messages()
        self.assertEqual(
            [m.command for m in got],
            ["BATCH", *["PRIVMSG"] * 4, "BATCH"],
        )
        start = got[0]
        ref = start.params[0][1:]
        self.assertEqual(start.params, (f"+{ref}", "draft/multiline", "#chan"))
        self.assertIn("msgid", start.tags)
        self.assertEqual(
            [m.params[1] for m in got[1:5]], ["hello", " world", "", "second"]
        )
        self.assertIn("draft/multiline-concat", got[2].tags)
        self.assertNotIn("draft/multiline-concat", got[1].tags)
        self.assertTrue(all(m.tags.get("batch") == ref for m in got[1:5]))
        self.assertEqual(got[-1].params, (f"-{ref}",))
        self.assertEqual(
            [(m.source, m.command, m.params) for m in self.carol.messages()],
            [
                ("alice!~alice@127.0.0.1", "PRIVMSG", ("#chan", text))
                for text in ("hello", " world", "second")
            ],
        )

    def test_fallback_lines_carry_the_msgid_once(self) -> None:
        dave = registered(self.harness, "dave", "message-tags", "server-time")
        dave.send("JOIN #chan")
        dave.raw()
        with_caps(self.bob, "server-time")
        send_batch(self.alice, "#chan", "one", "", "two", "+ three")
        start = self.bob.messages()[0]
        got = dave.messages()
        self.assertEqual([m.params[1] for m in got], ["one", "two", " three"])
        self.assertEqual(
            [m.tags.get("msgid") for m in got], [start.tags["msgid"], None, None]
        )
        self.assertTrue(all(m.tags["time"] == start.tags["time"] for m in got))

    def test_echo_with_the_label_of_the_opening(self) -> None:
        with_caps(self.alice, "echo-message", "labeled-response")
        send_batch(self.alice, "#chan", "one", "two", label="L1")
        got = self.alice.messages()
        self.assertEqual(got[0].command, "BATCH")
        self.assertEqual(got[0].tags.get("label"), "L1")
        self.assertEqual(got[0].params[1], "draft/multiline")
        self.assertEqual([m.command for m in got].count("PRIVMSG"), 2)

    def test_labeled_batch_without_echo_is_acknowledged(self) -> None:
        with_caps(self.alice, "labeled-response")
        send_batch(self.alice, "#chan", "one", label="L2")
        got = self.alice.messages()
        self.assertEqual(
            [(m.command, m.tags.get("label")) for m in got], [("ACK", "L2")]
        )

    def test_private_batch_and_history(self) -> None:
        send_batch(self.alice, "bob", "line one", "line two")
        self.assertEqual(self.bob.commands()[0], "BATCH")
        history = self.harness.server.history
        found: list[HistoryItem] = []
        key = conversation_key(party(self.alice.conn), party(self.bob.conn))
        history.query(Query((key,), "LATEST", None, 10)).addCallback(found.extend)
        self.assertEqual(
            [item.params[1] for item in found],
            ["line one", "line two"],
        )

    def test_too_many_bytes_fails_and_delivers_nothing(self) -> None:
        self.alice.send("BATCH +m1 draft/multiline #chan")
        chunk = "x" * 400
        for _ in range(MAX_BYTES // 400 + 1):
            self.alice.send(f"@batch=m1 PRIVMSG #chan :{chunk}")
        self.alice.send("BATCH -m1")
        fails = [m for m in self.alice.messages() if m.command == "FAIL"]
        self.assertEqual(
            fails[0].params[:3], ("BATCH", "MULTILINE_MAX_BYTES", str(MAX_BYTES))
        )
        self.assertEqual(self.bob.lines(), [])

    def test_wrong_tag_and_blank_batch(self) -> None:
        self.alice.send("BATCH +m1 draft/multiline #chan", "@batch=zz PRIVMSG #chan :x")
        self.assertEqual(
            [m.params[:2] for m in self.alice.messages()],
            [("BATCH", "MULTILINE_INVALID")],
        )
        self.assertIsNone(self.alice.conn.multiline)
        send_batch(self.alice, "#chan", "")
        self.assertEqual(
            [m.params[:2] for m in self.alice.messages()],
            [("BATCH", "MULTILINE_INVALID")],
        )
        self.alice.send("BATCH +m1 other-type #chan")
        self.assertEqual(self.alice.messages()[0].params[1], "MULTILINE_INVALID")
        self.alice.send("BATCH +bad*ref draft/multiline #chan")
        self.assertEqual(self.alice.messages()[0].params[1], "INVALID_REFTAG")
        self.assertEqual(self.bob.lines(), [])

    def test_another_command_ends_the_batch(self) -> None:
        self.alice.send(
            "BATCH +m1 draft/multiline #chan",
            "@batch=m1 PRIVMSG #chan :one",
            "TOPIC #chan :sneaky",
            "BATCH -m1",
        )
        self.assertEqual(
            [m.params[:2] for m in self.alice.messages()],
            [("BATCH", "MULTILINE_INVALID"), ("BATCH", "MULTILINE_INVALID")],
        )
        self.assertIsNone(self.alice.conn.multiline)
        self.assertEqual(self.bob.lines(), [], "neither the TOPIC nor the batch")

    def test_notice_batch_errors_are_silent(self) -> None:
        self.alice.send(
            "BATCH +m1 draft/multiline #chan",
            "@batch=m1 NOTICE #chan :a",
            "@batch=m1 NOTICE #other :b",
        )
        self.assertEqual(self.alice.lines(), [])

    def test_cannot_send_to_a_channel_one_is_not_in(self) -> None:
        dave = registered(self.harness, "dave", *CAPS)
        send_batch(dave, "#chan", "hi")
        self.assertEqual(dave.commands(), ["404"])

    def test_a_long_batch_is_not_cut_by_fakelag(self) -> None:
        data = (
            b"BATCH +m1 draft/multiline #chan\r\n"
            + b"".join(
                b"@batch=m1 PRIVMSG #chan :line %d\r\n" % index
                for index in range(MAX_LINES)
            )
            + b"BATCH -m1\r\n"
        )
        self.alice.send_raw(data)
        self.assertFalse(self.alice.disconnected)
        self.assertEqual(len(self.carol.lines()), MAX_LINES)
        self.assertEqual(
            Message("PRIVMSG", ("#chan", "line 0")).params,
            self.bob.messages()[1].params,
        )
