"""The client's protocol side: registration, CAP, SASL, lag, reconnects."""

from __future__ import annotations

import base64
import itertools

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from chat.client.connection import split_text
from chat.client.model import Kind
from tests.client_support import FakeEndpoint, Wire, make_session


class RegistrationTests(TestCase):
    def test_opening_lines(self) -> None:
        wire = Wire(password="pw", user="al", realname="Alice A")
        self.assertEqual(
            wire.sent(),
            ["CAP LS 302", "PASS pw", "NICK alice", "USER al 0 * :Alice A"],
        )

    def test_requests_only_wanted_offered_caps(self) -> None:
        wire = Wire()
        wire.sent()
        wire.feed(
            ":srv CAP * LS * :multi-prefix server-time=x foo sasl=PLAIN",
            ":srv CAP * LS :echo-message draft/chathistory chathistory batch",
        )
        self.assertEqual(
            wire.sent(),
            ["CAP REQ :multi-prefix server-time echo-message batch chathistory"],
        )
        wire.feed(":srv CAP alice ACK :multi-prefix server-time echo-message batch")
        self.assertEqual(wire.sent(), ["CAP END"])
        self.assertEqual(
            wire.session.caps, {"multi-prefix", "server-time", "echo-message", "batch"}
        )

    def test_no_caps_offered_ends_at_once(self) -> None:
        wire = Wire()
        wire.sent()
        wire.feed(":srv CAP * LS :foo bar")
        self.assertEqual(wire.sent(), ["CAP END"])

    def test_welcome_joins_configured_channels(self) -> None:
        wire = Wire(join=("#a", "#b"))
        wire.sent()
        wire.feed(":srv CAP * LS :", ":srv 001 alice :Welcome")
        self.assertEqual(wire.sent(), ["CAP END", "JOIN #a,#b"])
        wire.clock.advance(0)
        self.assertEqual(wire.sent(), ["PING lag1"])
        self.assertEqual(wire.state.status.state, "connected")
        self.assertIn("Welcome", wire.lines())

    def test_nick_in_use_tries_alternatives(self) -> None:
        wire = Wire()
        wire.sent()
        wire.feed(":srv 433 * alice :Nickname is already in use")
        self.assertEqual(wire.sent(), ["NICK alice_"])
        wire.feed(":srv 433 * alice_ :Nickname is already in use")
        self.assertEqual(wire.sent(), ["NICK alice__"])
        wire.feed(":srv 001 alice__ :Welcome")
        self.assertEqual(
            wire.lines().count("The nick alice_ is taken; trying alice__"), 1
        )
        self.assertEqual(wire.state.nick, "alice__")
        self.assertEqual(wire.state.status.nick, "alice__")

    def test_cap_new_and_del(self) -> None:
        wire = Wire()
        wire.register(caps="cap-notify")
        wire.feed(":srv CAP alice NEW :away-notify unknown-cap")
        self.assertEqual(wire.sent(), ["CAP REQ away-notify"])
        wire.feed(":srv CAP alice ACK :away-notify")
        self.assertIn("away-notify", wire.session.caps)
        self.assertEqual(wire.sent(), [])
        wire.feed(":srv CAP alice DEL :away-notify")
        self.assertNotIn("away-notify", wire.session.caps)

    def test_isupport_prefix_and_casemapping(self) -> None:
        wire = Wire()
        wire.register()
        self.assertEqual(wire.state.prefix_chars, "~&@%+")
        self.assertEqual(wire.state.prefix_modes, "qaohv")


class SaslTests(TestCase):
    def test_plain_success(self) -> None:
        wire = Wire(sasl_user="alice", sasl_password="sekrit", join=("#a",))
        wire.sent()
        wire.feed(":srv CAP * LS :sasl=PLAIN,EXTERNAL server-time")
        self.assertEqual(wire.sent(), ["CAP REQ :server-time sasl"])
        wire.feed(":srv CAP alice ACK :server-time sasl")
        self.assertEqual(wire.sent(), ["AUTHENTICATE PLAIN"])
        wire.feed("AUTHENTICATE +")
        payload = base64.b64encode(b"alice\0alice\0sekrit").decode()
        self.assertEqual(wire.sent(), [f"AUTHENTICATE {payload}"])
        wire.feed(":srv 900 alice alice!a@h alice :You are now logged in as alice")
        wire.feed(":srv 903 alice :SASL authentication successful")
        self.assertEqual(wire.sent(), ["CAP END"])
        wire.feed(":srv 001 alice :Welcome")
        self.assertIn("JOIN #a", wire.sent())
        self.assertIn("Logged in as alice", wire.lines())

    def test_plain_failure_reports_and_never_joins(self) -> None:
        wire = Wire(sasl_user="alice", sasl_password="wrong", join=("#a",))
        wire.sent()
        wire.feed(":srv CAP * LS :sasl", ":srv CAP alice ACK :sasl")
        wire.feed("AUTHENTICATE +")
        wire.sent()
        wire.feed(":srv 904 alice :SASL authentication failed")
        self.assertEqual(wire.sent(), ["QUIT :Login failed"])
        self.assertTrue(wire.transport.disconnecting)
        errors = [
            line.text
            for line in wire.state.server_buffer.lines
            if line.kind == Kind.ERROR
        ]
        self.assertTrue(any("SASL login as alice failed" in e for e in errors), errors)
        self.assertTrue(any("No channels were joined" in e for e in errors))
        self.assertEqual(wire.state.status.state, "stopped")
        wire.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(wire.state.status.state, "stopped")
        # A 001 arriving anyway (a server ignoring the failure) joins nothing.
        wire.feed(":srv 001 alice :Welcome")
        self.assertNotIn("JOIN #a", wire.sent())

    def test_plain_without_sasl_offered_is_a_failure(self) -> None:
        wire = Wire(sasl_user="alice", sasl_password="pw", join=("#a",))
        wire.sent()
        wire.feed(":srv CAP * LS :server-time")
        wire.feed(":srv CAP alice ACK :server-time")
        self.assertEqual(wire.sent(), ["CAP REQ server-time", "QUIT :Login failed"])
        self.assertIn("does not offer SASL", wire.lines()[-1])

    def test_mechanism_not_offered(self) -> None:
        wire = Wire(sasl_user="alice", sasl_password="pw")
        wire.sent()
        wire.feed(":srv CAP * LS :sasl=EXTERNAL", ":srv CAP alice ACK :sasl")
        self.assertEqual(wire.sent(), ["CAP REQ sasl", "QUIT :Login failed"])
        self.assertIn("but not PLAIN", wire.lines()[-1])

    def test_external_with_certificate(self) -> None:
        from pathlib import Path

        wire = Wire(cert=Path("client.pem"))
        wire.sent()
        wire.feed(":srv CAP * LS :sasl=PLAIN,EXTERNAL", ":srv CAP alice ACK :sasl")
        self.assertEqual(wire.sent(), ["CAP REQ sasl", "AUTHENTICATE EXTERNAL"])
        wire.feed("AUTHENTICATE +")
        self.assertEqual(wire.sent(), ["AUTHENTICATE +"])
        wire.feed(":srv 903 alice :SASL authentication successful")
        self.assertEqual(wire.sent(), ["CAP END"])


class LagTests(TestCase):
    def test_ping_pong_measures_lag(self) -> None:
        wire = Wire()
        wire.sent()
        wire.feed(":srv CAP * LS :", ":srv 001 alice :Welcome")
        wire.clock.advance(0)
        self.assertIn("PING lag1", wire.sent())
        wire.clock.advance(0.25)
        wire.feed(":srv PONG srv lag1")
        self.assertEqual(wire.state.status.lag, 0.25)
        wire.clock.advance(30)
        self.assertEqual(wire.sent(), ["PING lag2"])

    def test_silence_disconnects(self) -> None:
        wire = Wire(ping_timeout=90.0)
        wire.register()
        wire.clock.advance(0)
        wire.clock.pump([30, 30, 30])
        self.assertTrue(wire.transport.disconnecting)
        self.assertIn("No answer from the server", wire.lines()[-1])

    def test_a_failing_handler_is_reported_not_fatal(self) -> None:
        wire = Wire()
        wire.register()

        def broken(message: object, origin: object) -> None:
            raise RuntimeError("bug")

        wire.session.events.handle = broken  # type: ignore[method-assign,assignment]
        wire.feed(":bob!b@h PRIVMSG alice :hi")
        self.assertFalse(wire.transport.disconnecting)
        self.assertIn("Could not handle a PRIVMSG message", wire.lines()[-1])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        wire.feed("PING :still-here")
        self.assertEqual(wire.sent(), ["PONG still-here"])

    def test_answers_server_ping(self) -> None:
        wire = Wire()
        wire.sent()
        wire.feed("PING :abc")
        self.assertEqual(wire.sent(), ["PONG abc"])


class ReconnectTests(TestCase):
    def test_backoff_doubles_until_the_cap(self) -> None:
        session = make_session(reconnect_initial=1.0, reconnect_max=8.0)
        clock = session.clock
        endpoint = FakeEndpoint(clock)  # type: ignore[arg-type]
        session.start(endpoint)
        clock.pump([1] * 40)
        times = endpoint.attempts
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        self.assertEqual(gaps[:5], [1.0, 2.0, 4.0, 8.0, 8.0])
        self.assertIn("Connection refused", session.state.server_buffer.lines[-1].text)
        session.quit()

    def test_jitter_spreads_delays(self) -> None:
        session = make_session(reconnect_initial=2.0)
        values = iter([0.5, 0.25])
        from chat.client.connection import Session

        jittered = Session(session.config, session.clock, jitter=lambda: next(values))
        self.assertEqual(jittered.retry_delay(1), 3.0)
        self.assertEqual(jittered.retry_delay(2), 4.5)
        self.assertEqual(jittered.state.status.state, "reconnecting in 4s")

    def test_lost_connection_reconnects_and_rejoins_with_gap(self) -> None:
        session = make_session(join=("#a",))
        clock = session.clock
        endpoint = FakeEndpoint(clock)  # type: ignore[arg-type]
        endpoint.refuse = False
        session.start(endpoint)
        protocol, transport = endpoint.connected[0]
        protocol.dataReceived(
            b":srv CAP * LS :\r\n:srv 001 alice :hi\r\n:alice!a@h JOIN #a\r\n"
            b":srv 353 alice = #a :alice bob\r\n:srv 366 alice #a :End\r\n"
        )
        clock.advance(100)
        protocol.connectionLost(Failure(ConnectionLost("Connection reset")))
        buffer = session.state.find("#a")
        assert buffer is not None
        self.assertFalse(buffer.joined)
        self.assertEqual(buffer.members, {})
        self.assertEqual(buffer.lines[-1].kind, Kind.GAP)
        self.assertIn("Disconnected", buffer.lines[-1].text)
        self.assertEqual(session.state.status.state, "reconnecting in 1s")
        clock.advance(1)
        self.assertEqual(len(endpoint.connected), 2)
        protocol, transport = endpoint.connected[1]
        transport.clear()
        protocol.dataReceived(b":srv CAP * LS :\r\n:srv 001 alice :hi\r\n")
        self.assertIn(b"JOIN #a\r\n", transport.value())
        clock.advance(42)
        protocol.dataReceived(b":alice!a@h JOIN #a\r\n")
        self.assertIn("Rejoined after 43 s away", buffer.lines[-1].text)
        self.assertIn("were missed", buffer.lines[-1].text)
        session.quit()

    def test_rejoin_asks_history_since_the_last_line(self) -> None:
        session = make_session(join=("#a",))
        clock = session.clock
        clock.advance(1_800_000_000)
        endpoint = FakeEndpoint(clock)  # type: ignore[arg-type]
        endpoint.refuse = False
        session.start(endpoint)
        protocol, transport = endpoint.connected[0]
        protocol.dataReceived(
            b":srv CAP * LS :chathistory batch server-time\r\n"
            b":srv CAP alice ACK :chathistory batch server-time\r\n"
            b":srv 001 alice :hi\r\n:alice!a@h JOIN #a\r\n"
            b"@time=2027-01-15T08:00:00.000Z :bob!b@h PRIVMSG #a :last seen\r\n"
        )
        clock.advance(60)
        protocol.connectionLost(Failure(ConnectionLost("Connection reset")))
        clock.advance(1)
        protocol, transport = endpoint.connected[1]
        protocol.dataReceived(
            b":srv CAP * LS :chathistory batch server-time\r\n"
            b":srv CAP alice ACK :chathistory batch server-time\r\n"
            b":srv 001 alice :hi\r\n:alice!a@h JOIN #a\r\n"
        )
        self.assertIn(
            b"CHATHISTORY LATEST #a timestamp=2027-01-15T08:00:00.000Z 50\r\n",
            transport.value(),
        )
        buffer = session.state.find("#a")
        assert buffer is not None
        self.assertIn("loaded from the server's history", buffer.lines[-1].text)
        session.quit()

    def test_quit_stops_reconnecting(self) -> None:
        session = make_session()
        clock = session.clock
        endpoint = FakeEndpoint(clock)  # type: ignore[arg-type]
        endpoint.refuse = False
        session.start(endpoint)
        protocol, transport = endpoint.connected[0]
        protocol.dataReceived(b":srv CAP * LS :\r\n:srv 001 alice :hi\r\n")
        quits: list[bool] = []
        session.on_quit = lambda: quits.append(True)
        session.quit("bye")
        self.assertIn(b"QUIT :bye\r\n", transport.value())
        protocol.connectionLost(Failure(ConnectionDone()))
        clock.advance(300)
        self.assertEqual(len(endpoint.attempts), 1)
        self.assertEqual(quits, [True])


class SplitTests(TestCase):
    def test_split_keeps_utf8_whole(self) -> None:
        text = "é" * 300
        pieces = split_text(text, 101)
        self.assertEqual("".join(pieces), text)
        self.assertTrue(all(len(p.encode()) <= 101 for p in pieces))

    def test_split_prefers_spaces(self) -> None:
        self.assertEqual(split_text("aaaa bbbb cccc", 10), ["aaaa bbbb", "cccc"])
