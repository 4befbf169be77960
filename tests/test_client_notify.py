"""The bell and desktop notifications, and highlight words from the config."""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import TestCase

from chat.client.config import ConfigError, from_args
from chat.client.model import Buffer, Kind, Line
from chat.client.notify import Notifier
from tests.client_support import Wire


def notifier(
    desktop: str, bell: bool = True, found: str | None = None
) -> tuple[Notifier, list[str], list[list[str]]]:
    written: list[str] = []
    spawned: list[list[str]] = []
    return (
        Notifier(bell, desktop, written.append, spawned.append, lambda _: found),
        written,
        spawned,
    )


class NotifierTests(TestCase):
    def test_notify_send_when_found(self) -> None:
        notify, written, spawned = notifier("auto", found="/usr/bin/notify-send")
        query = Buffer("bob", Buffer.QUERY)
        notify(query, Line(0, Kind.MESSAGE, "are you there?", "bob"))
        self.assertEqual(written, ["\a"])
        self.assertEqual(
            spawned,
            [
                [
                    "notify-send",
                    "--app-name=chat-client",
                    "--",
                    "bob (private)",
                    "are you there?",
                ]
            ],
        )

    def test_auto_without_notify_send_uses_osc777(self) -> None:
        notify, written, _ = notifier("auto", bell=False)
        channel = Buffer("#a;b", Buffer.CHANNEL)
        notify(channel, Line(0, Kind.MESSAGE, "alice: x", "bob", highlight=True))
        self.assertEqual(written, ["\x1b]777;notify;bob in #a,b;alice: x\x07"])

    def test_osc9_and_quiet_lines(self) -> None:
        notify, written, _ = notifier("osc9")
        channel = Buffer("#a", Buffer.CHANNEL)
        notify(channel, Line(0, Kind.MESSAGE, "nothing special", "bob"))
        notify(channel, Line(0, Kind.JOIN, "bob joined", "bob"))
        notify(
            channel, Line(0, Kind.MESSAGE, "alice", "bob", highlight=True, history=True)
        )
        self.assertEqual(written, [])
        notify(channel, Line(0, Kind.MESSAGE, "alice\u009b2J", "bob", highlight=True))
        self.assertEqual(written, ["\a", "\x1b]9;bob in #a: alice 2J\x07"])

    def test_off_rings_only(self) -> None:
        notify, written, spawned = notifier("off", found="/usr/bin/notify-send")
        notify(Buffer("bob", Buffer.QUERY), Line(0, Kind.ACTION, "waves", "bob"))
        self.assertEqual((written, spawned), (["\a"], []))


class HighlightWordTests(TestCase):
    def test_words_from_the_config_file(self) -> None:
        path = Path(self.mktemp())
        path.write_text('[ui]\nhighlights = ["deploy", "on call"]\nnotify = "auto"\n')
        config = from_args(["--config", str(path)])
        self.assertEqual(config.highlights, ("deploy", "on call"))
        self.assertEqual((config.notify, config.bell), ("auto", True))
        wire = Wire(nick="alice", highlights=config.highlights)
        wire.register()
        wire.feed(
            ":alice!a@h JOIN #ops",
            ":bob!b@h PRIVMSG #ops :Deploy done",
            ":bob!b@h PRIVMSG #ops :redeployed",
            ":bob!b@h PRIVMSG #ops :who is on call?",
        )
        buffer = wire.state.find("#ops")
        assert buffer is not None
        self.assertEqual(
            [line.highlight for line in buffer.lines][-3:], [True, False, True]
        )

    def test_unknown_notify_is_refused(self) -> None:
        path = Path(self.mktemp())
        path.write_text('[ui]\nnotify = "loud"\n')
        self.assertRaises(ConfigError, from_args, ["--config", str(path)])
