"""draft/read-marker: MARKREAD, shared by an account's connections."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chat.commands.capabilities import SUPPORTED_CAPS
from chat.readmarkers import MAX_MARKERS
from tests.accounts_support import PASSWORD, account_harness, make_account
from tests.ircv3_support import with_caps
from tests.support import FakeClient, Harness

STAMP = "timestamp=2026-01-02T03:04:05.678Z"
EARLIER = "timestamp=2025-01-02T03:04:05.678Z"


def logged_in(harness: Harness, nick: str) -> FakeClient:
    client = harness.register(nick)
    client.send(f"NS IDENTIFY alice {PASSWORD}")
    assert client.conn.account == "alice", client.lines()
    client.raw()
    return with_caps(client, "draft/read-marker")


class MarkReadTests(TestCase):
    def setUp(self) -> None:
        self.harness = account_harness()
        make_account(self.harness, "alice")

    def test_get_and_set(self) -> None:
        alice = logged_in(self.harness, "alice")
        alice.send("MARKREAD #chan")
        self.assertEqual(alice.lines(), [":irc.test MARKREAD #chan *"])
        alice.send(f"MARKREAD #chan {STAMP}")
        self.assertEqual(alice.lines(), [f":irc.test MARKREAD #chan {STAMP}"])
        alice.send("MARKREAD #CHAN")
        self.assertEqual(alice.lines(), [f":irc.test MARKREAD #CHAN {STAMP}"])
        self.assertIn("draft/read-marker", SUPPORTED_CAPS)

    def test_marker_never_moves_back(self) -> None:
        alice = logged_in(self.harness, "alice")
        alice.send(f"MARKREAD bob {STAMP}", f"MARKREAD bob {EARLIER}")
        self.assertEqual(
            alice.lines(),
            [f":irc.test MARKREAD bob {STAMP}", f":irc.test MARKREAD bob {STAMP}"],
        )

    def test_synced_to_the_accounts_other_connections(self) -> None:
        first = logged_in(self.harness, "alice")
        second = logged_in(self.harness, "alice2")
        stranger = with_caps(self.harness.register("carol"), "draft/read-marker")
        first.send(f"MARKREAD #chan {STAMP}")
        first.raw()
        self.assertEqual(second.lines(), [f":irc.test MARKREAD #chan {STAMP}"])
        self.assertEqual(stranger.lines(), [])
        first.send(f"MARKREAD #chan {EARLIER}")
        self.assertEqual(second.lines(), [])
        second.send("MARKREAD #chan")
        self.assertEqual(second.lines(), [f":irc.test MARKREAD #chan {STAMP}"])

    def test_join_tells_the_marker(self) -> None:
        alice = logged_in(self.harness, "alice")
        alice.send(f"MARKREAD #chan {STAMP}")
        alice.raw()
        alice.send("JOIN #chan")
        self.assertEqual(alice.lines()[:2][1], f":irc.test MARKREAD #chan {STAMP}")

    def test_guest_markers_are_its_own(self) -> None:
        guest = with_caps(self.harness.register("guest"), "draft/read-marker")
        other = with_caps(self.harness.register("other"), "draft/read-marker")
        guest.send(f"MARKREAD #chan {STAMP}")
        guest.raw()
        other.send("MARKREAD #chan")
        self.assertEqual(other.lines(), [":irc.test MARKREAD #chan *"])

    def test_bad_input(self) -> None:
        alice = logged_in(self.harness, "alice")
        alice.send("MARKREAD", "MARKREAD #chan 2026-01-02", "MARKREAD #c timestamp=x")
        self.assertEqual(
            [m.params[:2] for m in alice.messages()],
            [
                ("MARKREAD", "NEED_MORE_PARAMS"),
                ("MARKREAD", "INVALID_PARAMS"),
                ("MARKREAD", "INVALID_PARAMS"),
            ],
        )

    def test_oldest_marker_is_forgotten_past_the_limit(self) -> None:
        alice = logged_in(self.harness, "alice")
        for index in range(MAX_MARKERS + 1):
            alice.send(f"MARKREAD #c{index} {STAMP}")
        alice.raw()
        alice.send("MARKREAD #c0", "MARKREAD #c1")
        self.assertEqual(
            alice.lines(),
            [":irc.test MARKREAD #c0 *", f":irc.test MARKREAD #c1 {STAMP}"],
        )
