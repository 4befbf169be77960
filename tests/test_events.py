"""The operator's log: one event per thing that happened, nothing secret."""

from __future__ import annotations

import base64
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import LogEvent, Logger, LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import TestCase

from chat.config import Limits
from chat.events import ABUSE_FIRST, EVENTS, EventLog
from chat.logging import json_record
from chat.passwords import hash_password
from tests.accounts_support import (
    PASSWORD,
    account_harness,
    inline,
    make_account,
    plain,
    sasl_connect,
)
from tests.e2e_support import connect_tls, is_command, start_server
from tests.support import Harness

#: A cheap scrypt cost for tests; the format is the production one.
OPER_PASSWORD = "oper-secret-1"
OPERATORS = {"admin": hash_password(OPER_PASSWORD, n=2**10)}
#: Text that must never reach the log.
BODY = "the-secret-body-77"
#: A documentation address: not exempt from anything.
FAR = "192.0.2.7"


def named(events: list[LogEvent], name: str) -> list[LogEvent]:
    """The events called *name* (`chat.events.EVENTS`)."""
    return [event for event in events if event.get("event") == name]


def text_of(events: list[LogEvent]) -> str:
    """Everything the text and JSON logs would show of *events*."""
    return "\n".join(formatEvent(e) + repr(json_record(e)) for e in events)


class AbuseRateTests(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.events: list[LogEvent] = []
        logger = Logger(namespace="chat.events", observer=self.events.append)
        self.log = EventLog(self.clock, logger, first=3, lines=10, window=60)

    def names(self) -> list[str]:
        """The names of the events logged since the last call."""
        names = [str(e["event"]) for e in self.events]
        self.events.clear()
        return names

    def test_first_few_then_one_summary_per_window(self) -> None:
        for _ in range(50):
            self.log.abuse("refused", "192.0.2.1", "Refused {address}", address="x")
        self.assertEqual(self.names(), ["refused"] * 3)
        self.clock.advance(60)
        [summary] = self.events
        self.assertEqual(
            (summary["event"], summary["of"], summary["count"]),
            ("suppressed", "refused", 47),
        )
        self.assertIn("47 more refused events from 192.0.2.1", formatEvent(summary))
        self.names()
        # A new window: the first few are logged again.
        self.log.abuse("refused", "192.0.2.1", "Refused")
        self.assertEqual(self.names(), ["refused"])
        self.assertEqual(self.clock.getDelayedCalls(), [])  # nothing held back

    def test_addresses_and_kinds_are_counted_apart(self) -> None:
        for address in ("192.0.2.1", "192.0.2.2"):
            for kind in ("refused", "login-failed"):
                for _ in range(4):
                    self.log.abuse(kind, address, "x")
        self.assertEqual(len(self.names()), 10)  # at most `lines` in a window
        self.clock.advance(60)
        counts = {(e["of"], e["address"]): e["count"] for e in self.events}
        self.assertEqual(sum(counts.values()), 16 - 10)

    def test_a_storm_from_many_addresses_stays_bounded(self) -> None:
        for n in range(5000):
            self.log.abuse("refused", f"198.51.100.{n % 250}.{n}", "x")
        self.assertEqual(len(self.names()), 10)
        self.clock.advance(60)
        summaries = self.events
        self.assertLessEqual(len(summaries), 11)
        self.assertEqual(sum(e["count"] for e in summaries), 5000 - 10)

    def test_stop_writes_the_pending_summary(self) -> None:
        for _ in range(5):
            self.log.abuse("refused", "192.0.2.1", "x")
        self.names()
        self.log.stop()
        self.assertEqual(self.names(), ["suppressed"])
        self.assertEqual(self.clock.getDelayedCalls(), [])


class ConnectionEventTests(TestCase):
    def test_connect_register_quit(self) -> None:
        harness = Harness()
        with capturedLogs() as events:
            client = harness.connect(FAR)
            client.send("NICK alice", "USER al 0 * :Alice")
            client.send("QUIT :bye \x1b[31m")
        [connect] = named(events, "connect")
        self.assertEqual(connect["address"], FAR)
        self.assertIsNone(connect["tls"])
        self.assertIn(
            f"Connection from {FAR} port 50000 (plaintext)", formatEvent(connect)
        )
        [register] = named(events, "register")
        self.assertEqual(
            (register["nick"], register["user"], register["host"], register["account"]),
            ("alice", "~al", FAR, None),
        )
        [quit] = named(events, "disconnect")
        self.assertEqual(quit["reason"], "Quit: bye \x1b[31m")
        # The reason a client chose cannot drive the operator's terminal.
        self.assertNotIn("\x1b", formatEvent(quit))
        self.assertIn("\\x1b", formatEvent(quit))

    def test_refusals_are_logged_and_rate_limited(self) -> None:
        harness = Harness(limits=Limits(max_per_address=1))
        with capturedLogs() as events:
            harness.connect(FAR)
            for _ in range(ABUSE_FIRST + 20):
                harness.connect(FAR)
            refused = named(events, "refused")
            self.assertEqual(len(refused), ABUSE_FIRST)
            self.assertEqual(
                refused[0]["reason"], "Too many connections from your address"
            )
            harness.clock.advance(60)
        [summary] = named(events, "suppressed")
        self.assertEqual((summary["of"], summary["count"]), ("refused", 20))

    def test_flood_kill(self) -> None:
        harness = Harness(
            limits=Limits(flood_burst=2, flood_connect_burst=2, flood_max_queued=3)
        )
        client = harness.register("flooder", FAR)
        with capturedLogs() as events:
            client.send(*(f"PRIVMSG flooder :{BODY}" for _ in range(10)))
        [kill] = named(events, "flood-kill")
        self.assertEqual((kill["nick"], kill["address"]), ("flooder", FAR))
        [gone] = named(events, "disconnect")
        self.assertEqual(gone["reason"], "Excess Flood")
        self.assertNotIn(BODY, text_of(events))

    def test_sendq_kill(self) -> None:
        harness = Harness(limits=Limits(sendq_bytes=500))
        alice, bob = harness.channel_of("alice", "bob")
        with capturedLogs() as events:
            bob.transport.producer.pauseProducing()
            for n in range(20):
                alice.send(f"PRIVMSG #chan :{BODY} {n} " + "x" * 40)
            harness.clock.advance(0)
        [kill] = named(events, "sendq-kill")
        self.assertEqual(kill["nick"], "bob")
        self.assertGreater(kill["queued"], 500)
        self.assertNotIn(BODY, text_of(events))


class LoginEventTests(TestCase):
    def setUp(self) -> None:
        self.harness = account_harness()
        make_account(self.harness, "alice")

    def test_sasl_plain_success_and_failure(self) -> None:
        with capturedLogs() as events:
            client = sasl_connect(self.harness, "alice")
            client.send(
                "AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', 'wrong-pass-9')}"
            )
            client.send(
                "AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', PASSWORD)}"
            )
            client.send("CAP END")
        [failed] = named(events, "login-failed")
        self.assertEqual(
            (failed["method"], failed["account"], failed["why"]),
            ("SASL PLAIN", "alice", "bad credentials"),
        )
        [login] = named(events, "login")
        self.assertEqual((login["method"], login["account"]), ("SASL PLAIN", "alice"))
        [register] = named(events, "register")
        self.assertEqual(register["account"], "alice")
        logged = text_of(events)
        for secret in ("wrong-pass-9", PASSWORD, plain("alice", PASSWORD)):
            self.assertNotIn(secret, logged)

    def test_failed_sasl_is_logged_when_the_client_left_meanwhile(self) -> None:
        held: list[tuple[Any, tuple[Any, ...], Deferred[Any]]] = []

        def worker(work: Any, *args: Any) -> Deferred[Any]:
            held.append((work, args, Deferred()))
            return held[-1][2]

        self.harness.server.accounts.worker = worker
        with capturedLogs() as events:
            client = sasl_connect(self.harness, "alice")
            client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', 'bad-9')}")
            client.send("QUIT :gone")
            [(work, args, waiting)] = held
            waiting.callback(work(*args))
        [failed] = named(events, "login-failed")
        self.assertEqual((failed["nick"], failed["account"]), ("alice", "alice"))

    def test_nickserv_identify(self) -> None:
        client = self.harness.register("bob")
        with capturedLogs() as events:
            client.send("PRIVMSG NickServ :IDENTIFY alice wrong-pass-9")
            client.send(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
        [failed] = named(events, "login-failed")
        self.assertEqual(
            (failed["method"], failed["account"]), ("NickServ IDENTIFY", "alice")
        )
        [login] = named(events, "login")
        self.assertEqual((login["nick"], login["account"]), ("bob", "alice"))
        self.assertNotIn("wrong-pass-9", text_of(events))
        self.assertNotIn(PASSWORD, text_of(events))

    def test_server_password(self) -> None:
        harness = Harness(password="server-pass-3")
        with capturedLogs() as events:
            client = harness.connect(FAR)
            client.send("PASS not-it-4", "NICK eve", "USER eve 0 * :Eve")
        [failed] = named(events, "login-failed")
        self.assertEqual(failed["method"], "PASS")
        self.assertNotIn("not-it-4", text_of(events))
        self.assertNotIn("server-pass-3", text_of(events))


class OperatorEventTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness(operators=OPERATORS)
        self.harness.server.accounts.worker = inline
        self.alice, self.bob = self.harness.channel_of("alice", "bob")

    def test_oper_kill_chghost_wallops(self) -> None:
        with capturedLogs() as events:
            self.alice.send("OPER swapped-pass-6 admin")
            self.alice.send("OPER admin wrong-pass-5")
            self.alice.send(f"OPER admin {OPER_PASSWORD}")
            self.alice.send(f"WALLOPS :{BODY}")
            self.alice.send("CHGHOST bob robert example.org")
            self.alice.send("KILL bob :spamming")
        unknown, failed = named(events, "oper-failed")
        self.assertEqual((unknown["operator"], unknown["why"]), (None, "unknown name"))
        self.assertEqual((failed["operator"], failed["nick"]), ("admin", "alice"))
        self.assertEqual(failed["why"], "wrong password")
        [oper] = named(events, "oper")
        self.assertEqual(oper["operator"], "admin")
        self.assertEqual(oper["log_level"], LogLevel.warn)
        [wallops] = named(events, "wallops")
        self.assertEqual(wallops["nick"], "alice")
        [chghost] = named(events, "chghost")
        self.assertEqual(
            (chghost["old"], chghost["new"]),
            ("bob!~bob@127.0.0.1", "bob!robert@example.org"),
        )
        [kill] = named(events, "kill")
        self.assertEqual(
            (kill["victim"], kill["reason"]), ("bob!robert@example.org", "spamming")
        )
        [gone] = named(events, "disconnect")
        self.assertEqual(gone["reason"], "Killed (alice (spamming))")
        logged = text_of(events)
        for secret in (OPER_PASSWORD, "wrong-pass-5", "swapped-pass-6", BODY):
            self.assertNotIn(secret, logged)

    def test_every_event_is_documented(self) -> None:
        with capturedLogs() as events:
            self.alice.send(f"OPER admin {OPER_PASSWORD}", "KILL bob :x")
        for event in events:
            if "event" in event:
                self.assertIn(event["event"], EVENTS)


class TLSConnectEventTests(TestCase):
    async def test_tls_version_and_no_body(self) -> None:
        with capturedLogs() as events:
            server = start_server(self)
            client = server.track(await connect_tls(server.tls_port, server.ca_file))
            await client.register("alice")
            client.send("PRIVMSG", "alice", BODY)
            await client.wait_for(is_command("PRIVMSG"))
            await server.stop()
        [connect] = named(events, "connect")
        self.assertEqual(connect["address"], "127.0.0.1")
        self.assertIn(connect["tls"], ("TLSv1.2", "TLSv1.3"))
        self.assertIn(f"({connect['tls']})", formatEvent(connect))
        record = json_record(connect)
        self.assertEqual((record["event"], record["tls"]), ("connect", connect["tls"]))
        self.assertFalse([key for key in record if key.startswith("_")], record)
        [register] = named(events, "register")
        self.assertEqual(register["tls"], connect["tls"])
        self.assertNotIn(BODY, text_of(events))
        self.assertNotIn(base64.b64encode(BODY.encode()).decode(), text_of(events))
