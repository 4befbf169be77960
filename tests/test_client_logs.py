"""Conversation logs: file names, line format, and what is never written."""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import TestCase

from chat.client.logs import file_name
from tests.client_support import Wire


class LogTests(TestCase):
    def test_own_lines_to_services_hide_all_but_the_command(self) -> None:
        state_dir = Path(self.mktemp())
        wire = Wire(nick="alice", state_dir=state_dir, logs_enabled=True)
        wire.register()
        wire.session.say("NickServ", "IDENTIFY alice hunter2")
        wire.session.say("bob", "my password is not logged here either? it is")
        wire.feed(":bob!b@h PRIVMSG alice :\x01ACTION waves\x01")
        directory = state_dir / "logs" / "irc.test"
        services = (directory / "nickserv.log").read_text()
        self.assertTrue(services.endswith(" <alice> IDENTIFY <hidden>\n"), services)
        self.assertNotIn("hunter2", services)
        self.assertEqual(
            [line[20:] for line in (directory / "bob.log").read_text().splitlines()],
            ["<alice> my password is not logged here either? it is", " * bob waves"],
        )

    def test_file_names_are_safe(self) -> None:
        self.assertEqual(file_name("#Chat/../x"), "#chat_.._x")
        self.assertEqual(file_name("..."), "_")
        self.assertEqual(file_name("[Bot]"), "_bot_")

    def test_unwritable_directory_is_reported_once(self) -> None:
        blocker = Path(self.mktemp())
        blocker.write_text("a file where the directory would be")
        wire = Wire(nick="alice", state_dir=blocker, logs_enabled=True)
        wire.register()
        wire.feed(":bob!b@h PRIVMSG alice :one", ":bob!b@h PRIVMSG alice :two")
        errors = [
            t for t in wire.lines() if t.startswith("Conversation logging stopped")
        ]
        self.assertEqual(len(errors), 1, wire.lines())
