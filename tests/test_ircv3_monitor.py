"""MONITOR: watch nicks come online and go offline."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chat import numerics
from chat.monitor import MONITOR_LIMIT
from tests.support import Harness


class MonitorTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.alice = self.harness.register("alice")

    def test_add_reports_status(self) -> None:
        self.harness.register("bob")
        self.alice.send("MONITOR + Bob,carol")
        self.assertEqual(
            self.alice.lines(),
            [
                ":irc.test 730 alice bob!~bob@127.0.0.1",
                ":irc.test 731 alice carol",
            ],
        )

    def test_online_offline_and_nick_changes(self) -> None:
        self.alice.send("MONITOR + bob,robert")
        self.alice.raw()
        bob = self.harness.register("bob")
        self.assertEqual(self.alice.lines(), [":irc.test 730 alice bob!~bob@127.0.0.1"])
        bob.send("NICK robert")
        self.assertEqual(
            self.alice.lines(),
            [":irc.test 731 alice bob", ":irc.test 730 alice robert!~bob@127.0.0.1"],
        )
        bob.send("QUIT :bye")
        self.assertEqual(self.alice.lines(), [":irc.test 731 alice robert"])

    def test_change_of_case_only_is_not_reported(self) -> None:
        bob = self.harness.register("bob")
        self.alice.send("MONITOR + bob")
        self.alice.raw()
        bob.send("NICK BOB")
        self.assertEqual(self.alice.lines(), [])

    def test_list_remove_clear_status(self) -> None:
        self.harness.register("bob")
        self.alice.send("MONITOR + bob,carol,dave", "MONITOR - dave")
        self.alice.raw()
        self.alice.send("MONITOR L")
        self.assertEqual(
            self.alice.lines(),
            [
                ":irc.test 732 alice bob,carol",
                ":irc.test 733 alice :End of MONITOR list",
            ],
        )
        self.alice.send("MONITOR S")
        self.assertEqual(
            self.alice.commands(), [numerics.RPL_MONONLINE, numerics.RPL_MONOFFLINE]
        )
        self.alice.send("MONITOR C", "MONITOR L")
        self.assertEqual(self.alice.commands(), [numerics.RPL_ENDOFMONLIST])
        self.harness.register("carol")
        self.assertEqual(self.alice.lines(), [])

    def test_limit(self) -> None:
        nicks = [f"n{i}" for i in range(MONITOR_LIMIT + 2)]
        self.alice.send("MONITOR + " + ",".join(nicks))
        messages = self.alice.messages()
        full = [m for m in messages if m.command == numerics.ERR_MONLISTFULL]
        self.assertEqual(
            full[0].params[1:3], (str(MONITOR_LIMIT), ",".join(nicks[MONITOR_LIMIT:]))
        )
        self.assertIn(f"MONITOR={MONITOR_LIMIT}", self.harness.server.isupport())

    def test_long_replies_are_split(self) -> None:
        nicks = [f"somewhatlongnick{i}" for i in range(60)]
        for start in range(0, 60, 20):
            self.alice.send("MONITOR + " + ",".join(nicks[start : start + 20]))
        self.alice.raw()
        self.alice.send("MONITOR S")
        lines = self.alice.lines()
        self.assertGreater(len(lines), 1)
        self.assertTrue(all(len(line) < 512 for line in lines))
        names = [n for line in lines for n in line.split(" ")[-1].split(",")]
        self.assertEqual(names, nicks)

    def test_disconnect_forgets_the_watcher(self) -> None:
        self.alice.send("MONITOR + bob")
        self.alice.send("QUIT")
        self.harness.register("bob")
        self.assertEqual(self.harness.server.monitors.watched_by(self.alice.conn), {})

    def test_errors(self) -> None:
        self.alice.send("MONITOR", "MONITOR +", "MONITOR X")
        self.assertEqual(
            self.alice.commands(),
            [
                numerics.ERR_NEEDMOREPARAMS,
                numerics.ERR_NEEDMOREPARAMS,
                numerics.ERR_UNKNOWNCOMMAND,
            ],
        )
