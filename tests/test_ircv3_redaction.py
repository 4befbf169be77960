"""draft/message-redaction: REDACT, who may, and history."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chat.commands.capabilities import SUPPORTED_CAPS
from chat.history import HistoryItem, Query
from tests.accounts_support import PASSWORD, account_harness, make_account
from tests.ircv3_support import with_caps
from tests.support import FakeClient

CAPS = ("draft/message-redaction", "message-tags", "echo-message")


def identify(client: FakeClient, account: str) -> None:
    client.send(f"NS IDENTIFY {account} {PASSWORD}")
    assert client.conn.account == account, client.lines()
    client.raw()


class RedactTests(TestCase):
    def setUp(self) -> None:
        self.harness = account_harness()
        for name in ("alice", "bob"):
            make_account(self.harness, name)
        self.alice, self.bob, self.carol = self.harness.channel_of(
            "alice", "bob", "carol"
        )
        identify(self.alice, "alice")
        identify(self.bob, "bob")
        for client in (self.alice, self.bob):
            with_caps(client, *CAPS)

    def say(self, client: FakeClient, text: str, target: str = "#chan") -> str:
        client.send(f"PRIVMSG {target} :{text}")
        echo = client.messages()[-1]
        for other in (self.alice, self.bob, self.carol):
            other.raw()
        return echo.tags["msgid"]

    def history(self, key: str = "#chan") -> list[str]:
        found: list[HistoryItem] = []
        query = Query((key,), "LATEST", None, 100)
        self.harness.server.history.query(query).addCallback(found.extend)
        return [item.params[1] for item in found]

    def test_sender_redacts_own_message(self) -> None:
        msgid = self.say(self.alice, "oops")
        self.say(self.bob, "fine")
        self.alice.send(f"REDACT #chan {msgid} :typo")
        self.assertEqual(
            self.alice.lines()[-1].split(" ", 1)[1],
            f":alice!~alice@127.0.0.1 REDACT #chan {msgid} typo",
        )
        bob_sees = self.bob.messages()
        self.assertEqual(
            [(m.command, m.params) for m in bob_sees],
            [("REDACT", ("#chan", msgid, "typo"))],
        )
        self.assertEqual(self.carol.lines(), [], "no capability, no REDACT")
        self.assertEqual(self.history(), ["fine"])
        self.assertIn("draft/message-redaction", SUPPORTED_CAPS)

    def test_others_may_not(self) -> None:
        msgid = self.say(self.alice, "mine")
        self.bob.send(f"REDACT #chan {msgid}")
        self.assertEqual(
            self.bob.messages()[0].params[:4],
            ("REDACT", "REDACT_FORBIDDEN", "#chan", msgid),
        )
        self.assertEqual(self.alice.lines(), [])
        self.assertEqual(self.history(), ["mine"])

    def test_guest_may_not_redact_even_its_own(self) -> None:
        with_caps(self.carol, *CAPS)
        msgid = self.say(self.carol, "guest words")
        self.carol.send(f"REDACT #chan {msgid}")
        self.assertEqual(self.carol.messages()[0].params[1], "REDACT_FORBIDDEN")

    def test_channel_operator_redacts_anything(self) -> None:
        channel = self.harness.server.find_channel("#chan")
        assert channel is not None
        channel.members[self.bob.conn] = "o"
        msgid = self.say(self.alice, "spam")
        self.bob.send(f"REDACT #chan {msgid}")
        self.assertEqual(self.bob.messages()[-1].command, "REDACT")
        self.assertEqual(self.alice.messages()[0].command, "REDACT")
        self.assertEqual(self.history(), [])

    def test_oper_redacts_anything(self) -> None:
        self.harness.server.set_user_mode(self.bob.conn, "o", True)
        msgid = self.say(self.alice, "spam")
        self.bob.send(f"REDACT #chan {msgid}")
        self.assertEqual(self.bob.messages()[-1].command, "REDACT")
        self.assertEqual(self.history(), [])

    def test_unknown_message_and_target(self) -> None:
        self.alice.send("REDACT #chan nope", "REDACT #nowhere x", "REDACT nobody x")
        self.assertEqual(
            [
                m.params[:2] if m.command == "FAIL" else (m.command,)
                for m in self.alice.messages()
            ],
            [("REDACT", "UNKNOWN_MSGID"), ("REDACT", "INVALID_TARGET"), ("401",)],
        )

    def test_channel_events_are_not_redactable(self) -> None:
        self.harness.server.set_user_mode(self.alice.conn, "o", True)
        self.carol.send("PART #chan")
        self.alice.send("CAP REQ draft/event-playback")
        self.alice.raw()
        found: list[HistoryItem] = []
        query = Query(("#chan",), "LATEST", None, 100, None, frozenset({"PART"}))
        self.harness.server.history.query(query).addCallback(found.extend)
        self.alice.send(f"REDACT #chan {found[-1].msgid}")
        self.assertEqual(self.alice.messages()[0].params[1], "UNKNOWN_MSGID")

    def test_private_message(self) -> None:
        msgid = self.say(self.alice, "psst", target="bob")
        self.alice.send(f"REDACT bob {msgid}")
        self.assertEqual(self.alice.messages()[-1].command, "REDACT")
        self.assertEqual(
            [(m.command, m.params) for m in self.bob.messages()],
            [("REDACT", ("bob", msgid))],
        )

    def test_multiline_message_goes_from_history_whole(self) -> None:
        with_caps(self.alice, "draft/multiline", "batch")
        self.alice.send(
            "BATCH +b draft/multiline #chan",
            "@batch=b PRIVMSG #chan :one",
            "@batch=b PRIVMSG #chan :two",
            "BATCH -b",
        )
        msgid = self.alice.messages()[0].tags["msgid"]
        self.assertEqual(self.history(), ["one", "two"])
        self.alice.send(f"REDACT #chan {msgid}")
        self.assertEqual(self.history(), [])
