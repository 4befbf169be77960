"""The web listener's site and WebSocket framing, on a Clock (no sockets)."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import ISSLTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from chat.config import WebConfig
from chat.traffic import Traffic
from chat.web.connections import BROWSER_CONNECTIONS, ConnectionCap
from chat.web.site import CONTENT_SECURITY_POLICY
from chat.web.transport import LineTransport, SecureLineTransport
from chat.web.websocket import MAX_MESSAGE
from tests.web_support import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    ByteTransport,
    WebHarness,
    frame,
    handshake,
)


def get(path: str, host: str = "localhost:8443") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode("ascii")


class StaticFilesTests(TestCase):
    def setUp(self) -> None:
        self.web = WebHarness(self)

    def test_security_headers(self) -> None:
        client = self.web.connect()
        client.request(get("/nothing.html"))
        self.assertEqual(client.status, 404)
        self.assertEqual(
            client.header("Content-Security-Policy"), CONTENT_SECURITY_POLICY
        )
        self.assertNotIn("unsafe-inline", CONTENT_SECURITY_POLICY)
        self.assertEqual(client.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(client.header("X-Frame-Options"), "DENY")

    def test_no_directory_listing(self) -> None:
        (self.web.static / "icons").mkdir()
        (self.web.static / "icons" / "secret.png").write_bytes(b"png")
        client = self.web.connect()
        client.request(get("/icons/"))
        self.assertEqual(client.status, 403)
        self.assertNotIn(b"secret.png", client.transport.value())

    def test_outside_the_directory(self) -> None:
        client = self.web.connect()
        client.request(get("/../../etc/passwd"))
        self.assertIn(client.status, (400, 404))

    def test_socket_without_upgrade(self) -> None:
        client = self.web.connect()
        client.request(get("/socket"))
        self.assertGreaterEqual(client.status, 400)


class HandshakeTests(TestCase):
    def setUp(self) -> None:
        self.web = WebHarness(self)

    def test_text_subprotocol(self) -> None:
        client = self.web.open(protocols=("text.ircv3.net", "binary.ircv3.net"))
        self.assertEqual(client.header("Sec-WebSocket-Protocol"), "text.ircv3.net")
        client.send("PING :x")
        self.assertEqual([f.opcode for f in client.frames()], [TEXT])

    def test_binary_in_client_order(self) -> None:
        client = self.web.open(protocols=("binary.ircv3.net", "text.ircv3.net"))
        self.assertEqual(client.header("Sec-WebSocket-Protocol"), "binary.ircv3.net")
        client.send("PING :x")
        frames = client.frames()
        self.assertEqual([f.opcode for f in frames], [BINARY])
        self.assertEqual(frames[0].payload, b":irc.test PONG irc.test x")

    def test_no_subprotocol(self) -> None:
        client = self.web.open(protocols=())
        self.assertIsNone(client.header("Sec-WebSocket-Protocol"))
        client.send("PING :x")
        self.assertEqual([f.opcode for f in client.frames()], [TEXT])

    def test_unknown_subprotocol(self) -> None:
        client = self.web.open(protocols=("chat.example",))
        self.assertIsNone(client.header("Sec-WebSocket-Protocol"))

    def test_other_origin_refused(self) -> None:
        client = self.web.connect()
        with capturedLogs() as events:
            client.request(handshake(origin="https://evil.example"))
        self.assertEqual(client.status, 403)
        self.assertEqual(self.web.server.connections, set())
        self.assertEqual(len(events), 1, [e.get("log_format") for e in events])
        self.assertIn("origin", events[0]["log_format"])
        self.assertEqual(events[0]["origin"], "https://evil.example")
        self.assertEqual(events[0]["peer"], "203.0.113.5")

    def test_own_origin_needs_same_scheme(self) -> None:
        client = self.web.connect()
        client.request(handshake(origin="https://localhost:8443"))
        self.assertEqual(client.status, 403)
        other_port = self.web.connect()
        other_port.request(handshake(origin="http://localhost:8081"))
        self.assertEqual(other_port.status, 403)

    def test_own_origin_default_port(self) -> None:
        client = self.web.connect()
        client.request(
            handshake(host="Chat.Example.org", origin="http://chat.example.org:80")
        )
        self.assertEqual(client.status, 101)

    def test_no_origin(self) -> None:
        self.web.open(origin=None)

    def test_null_origin_refused(self) -> None:
        client = self.web.connect()
        client.request(handshake(origin="null"))
        self.assertEqual(client.status, 403)

    def test_configured_origins(self) -> None:
        web = WebHarness(self, WebConfig(allowed_origins=("https://chat.example.org",)))
        web.open(origin="https://chat.example.org", host="irc.example.org:8443")
        client = web.connect()
        client.request(handshake())  # its own origin is not listed
        self.assertEqual(client.status, 403)

    def test_any_origin(self) -> None:
        web = WebHarness(self, WebConfig(allowed_origins=("*",)))
        web.open(origin="https://elsewhere.example")

    def test_origins_follow_a_reload(self) -> None:
        from dataclasses import replace

        config = self.web.server.config
        self.web.server.config = replace(
            config, web=WebConfig(allowed_origins=("https://new.example",))
        )
        self.web.open(origin="https://new.example")


class FramingTests(TestCase):
    def setUp(self) -> None:
        self.web = WebHarness(self)

    def test_registration(self) -> None:
        client = self.web.open()
        client.send("NICK ann", "USER ann 0 * :Ann")
        lines = client.lines()
        self.assertTrue(lines[0].startswith(":irc.test 001 ann "), lines)
        self.assertTrue(all("\r" not in line and "\n" not in line for line in lines))
        conn = self.web.server.find_user("ann")
        assert conn is not None
        self.assertEqual(conn.host, "203.0.113.5")
        self.assertFalse(conn.secure)  # plain HTTP here; TLS: tests.test_web_e2e

    def test_one_write_many_frames(self) -> None:
        client = self.web.register("ann")
        client.send("JOIN #a,#b")
        frames = client.frames()
        self.assertGreater(len(frames), 4)
        self.assertTrue(all(f.fin and f.opcode == TEXT for f in frames))
        self.assertIn(b":ann!~ann@203.0.113.5 JOIN #a", [f.payload for f in frames])

    def test_frame_split_across_reads(self) -> None:
        client = self.web.register("ann")
        for byte in frame(b"PING :split"):
            client.send_raw(bytes([byte]))
        self.assertEqual(client.lines(), [":irc.test PONG irc.test split"])

    def test_two_frames_in_one_read(self) -> None:
        client = self.web.register("ann")
        client.send_raw(frame(b"PING :one") + frame(b"PING :two"))
        self.assertEqual(
            client.lines(),
            [":irc.test PONG irc.test one", ":irc.test PONG irc.test two"],
        )

    def test_fragmented_message(self) -> None:
        client = self.web.register("ann")
        client.send_raw(frame(b"PING ", fin=False))
        client.send_raw(frame(b":frag", CONTINUATION))
        self.assertEqual(client.lines(), [":irc.test PONG irc.test frag"])

    def test_trailing_crlf_tolerated(self) -> None:
        client = self.web.register("ann")
        client.send("PING :a\r\n", "PING :b\n")
        self.assertEqual(
            client.lines(), [":irc.test PONG irc.test a", ":irc.test PONG irc.test b"]
        )

    def test_embedded_line_break_refused(self) -> None:
        bob = self.web.register("bob")
        client = self.web.register("ann")
        client.send("PRIVMSG bob :hi\r\nQUIT :gone", "PRIVMSG bob :a\nb")
        lines = client.lines()
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(all(" INVALID_MESSAGE " in line for line in lines), lines)
        self.assertEqual(bob.lines(), [])
        self.assertIsNotNone(self.web.server.find_user("ann"))

    def test_invalid_utf8_text_closes_1007(self) -> None:
        client = self.web.register("ann")
        client.send(b"PRIVMSG ann :\xff\xfe")
        frames = client.frames()
        self.assertEqual(frames[-1].opcode, CLOSE)
        self.assertEqual(frames[-1].close_code, 1007)
        self.assertTrue(client.transport.disconnecting or client.transport.aborted)

    def test_invalid_utf8_binary_is_an_irc_error(self) -> None:
        client = self.web.register("ann")
        client.send(b"PRIVMSG ann :\xff\xfe", opcode=BINARY)
        lines = client.lines()
        self.assertEqual(len(lines), 1)
        self.assertIn("FAIL PRIVMSG INVALID_UTF8", lines[0])
        client.send("PING :still")
        self.assertEqual(client.lines(), [":irc.test PONG irc.test still"])

    def test_text_frames_stay_utf8(self) -> None:
        client = self.web.register("ann")
        client.transport.protocol.send_line(b"NOTICE ann :\xffok")
        self.assertEqual(client.lines(), ["NOTICE ann :\ufffdok"])
        binary = self.web.register("bob", protocols=("binary.ircv3.net",))
        binary.transport.protocol.send_line(b"NOTICE bob :\xffok")
        self.assertEqual([f.payload for f in binary.frames()], [b"NOTICE bob :\xffok"])

    def test_binary_frames_accepted_under_text(self) -> None:
        client = self.web.register("ann")
        client.send("PING :bin", opcode=BINARY)
        frames = client.frames()
        self.assertEqual(
            [(f.opcode, f.payload) for f in frames],
            [(TEXT, b":irc.test PONG irc.test bin")],
        )

    def test_oversize_message_closes_1009(self) -> None:
        client = self.web.register("ann")
        client.send(b"PRIVMSG ann :" + b"x" * MAX_MESSAGE)
        frames = client.frames()
        self.assertEqual(frames[-1].close_code, 1009)
        # A client that never answers the close is dropped after the grace.
        self.assertFalse(client.transport.disconnecting or client.transport.aborted)
        self.web.clock.advance(self.web.server.config.timeouts.close_grace + 1)
        self.assertTrue(client.transport.disconnecting or client.transport.aborted)
        client.lose()
        self.assertIsNone(self.web.server.find_user("ann"))

    def test_oversize_fragmented_message_closes_1009(self) -> None:
        client = self.web.register("ann")
        client.send_raw(frame(b"x" * 4000, fin=False))
        for _ in range(2):
            client.send_raw(frame(b"x" * 4000, CONTINUATION, fin=False))
        self.assertEqual(client.frames()[-1].close_code, 1009)

    def test_long_line_is_417(self) -> None:
        client = self.web.register("ann")
        client.send("PRIVMSG ann :" + "x" * 600)
        lines = client.lines()
        self.assertEqual(len(lines), 1)
        self.assertIn(" 417 ann ", lines[0])

    def test_ping_frame_answered(self) -> None:
        client = self.web.register("ann")
        client.send_raw(frame(b"hello", PING))
        frames = client.frames()
        self.assertEqual([(f.opcode, f.payload) for f in frames], [(PONG, b"hello")])

    def test_quit_error_then_close_1000(self) -> None:
        client = self.web.register("ann")
        client.send("QUIT :bye")
        frames = client.frames()
        self.assertTrue(frames[0].payload.startswith(b"ERROR :Closing Link"), frames)
        self.assertEqual(frames[-1].opcode, CLOSE)
        self.assertEqual(frames[-1].close_code, 1000)
        self.assertIsNone(self.web.server.find_user("ann"))

    def test_client_close(self) -> None:
        bob = self.web.register("bob")
        client = self.web.register("ann")
        client.send("JOIN #c")
        bob.send("JOIN #c")
        bob.frames()
        client.send_raw(frame(b"\x03\xe8", CLOSE))
        self.assertEqual(client.frames()[-1].close_code, 1000)
        client.lose()
        self.assertIsNone(self.web.server.find_user("ann"))
        self.assertIn(":ann!~ann@203.0.113.5 QUIT", bob.lines()[0])

    def test_quit_relayed_to_a_closing_websocket(self) -> None:
        """Two browsers closing at once: one's QUIT reaches the other while
        it is closing, and is dropped instead of raising."""
        bob = self.web.register("bob")
        ann = self.web.register("ann")
        ann.send("JOIN #c")
        bob.send("JOIN #c")
        bob.frames()
        bob.send_raw(frame(b"\x03\xe8", CLOSE))
        self.assertEqual(bob.frames()[-1].close_code, 1000)
        ann.lose()
        self.assertIsNone(self.web.server.find_user("ann"))
        self.assertEqual(bob.frames(), [])

    def test_dropped_connection(self) -> None:
        client = self.web.register("ann")
        client.lose()
        self.assertIsNone(self.web.server.find_user("ann"))
        self.assertEqual(self.web.server.connections, set())
        self.assertEqual(self.web.site.websocket.connections, set())

    def test_shutdown_waits_for_websockets_then_drops_them(self) -> None:
        factory = self.web.site.websocket
        self.assertTrue(factory.when_idle().called)
        client = self.web.register("ann")
        idle = factory.when_idle()
        self.assertFalse(idle.called)
        factory.abort_all()
        self.assertTrue(client.transport.aborted)
        client.lose()
        self.assertTrue(idle.called)

    def test_traffic_counted(self) -> None:
        client = self.web.register("ann")
        traffic = self.web.site.websocket.traffic
        before_in, before_out = traffic.bytes_in, traffic.bytes_out
        client.send("PING :t")
        self.assertEqual(traffic.bytes_in - before_in, len(b"PING :t"))
        self.assertEqual(
            traffic.bytes_out - before_out, len(b":irc.test PONG irc.test t\r\n")
        )


class LimitTests(TestCase):
    def test_per_address_limit(self) -> None:
        web = WebHarness(self, max_per_address=1)
        web.open()
        client = web.connect()
        client.request(handshake())
        frames = client.frames()
        self.assertIn(b"Too many connections", frames[0].payload)
        self.assertEqual(frames[-1].close_code, 1000)

    def test_fakelag(self) -> None:
        web = WebHarness(self)
        client = web.register("ann")
        limits = web.server.config.limits
        for i in range(limits.flood_connect_burst):
            client.send(f"PING :{i}")
        self.assertEqual(client.transport.producerState, "paused")
        replies = len(client.lines())
        self.assertLess(replies, limits.flood_connect_burst)
        web.clock.advance(10)
        self.assertGreater(len(client.lines()), 0)

    def test_excess_flood(self) -> None:
        web = WebHarness(self)
        client = web.register("ann")
        limits = web.server.config.limits
        for i in range(limits.flood_connect_burst + limits.flood_max_queued + 5):
            client.send(f"PING :{i}")
        self.assertEqual(web.server.stats["flood_kills"], 1)
        self.assertIn(b"Excess Flood", b"".join(f.payload for f in client.frames()))

    def test_ping_frames_count_for_fakelag(self) -> None:
        web = WebHarness(self)
        client = web.register("ann")
        limits = web.server.config.limits
        for _ in range(limits.flood_connect_burst + limits.flood_max_queued + 5):
            client.send_raw(frame(b"p", PING))
        self.assertEqual(web.server.stats["flood_kills"], 1)

    def test_sendq(self) -> None:
        web = WebHarness(self, sendq_bytes=1000)
        client = web.register("ann")
        other = web.register("bob")
        other.send("JOIN #c")
        client.send("JOIN #c")
        client.transport.producer.pauseProducing()  # the socket buffer is full
        for i in range(20):
            other.send(f"PRIVMSG #c :{'x' * 100} {i}")
        web.clock.advance(0)
        self.assertEqual(web.server.stats["sendq_kills"], 1)
        self.assertTrue(client.transport.aborted)

    def test_registration_timeout(self) -> None:
        web = WebHarness(self)
        client = web.open()
        web.clock.advance(web.server.config.timeouts.registration + 1)
        self.assertTrue(client.transport.aborted or client.transport.disconnecting)


class ProxyTests(TestCase):
    def test_untrusted_peer_cannot_forward(self) -> None:
        web = WebHarness(self)
        client = web.register("ann", headers=[("X-Forwarded-For", "198.51.100.7")])
        conn = web.server.find_user("ann")
        assert conn is not None
        self.assertEqual(conn.host, "203.0.113.5")
        client.send("WHOIS ann")
        self.assertIn("203.0.113.5", client.lines()[0])

    def test_trusted_proxy_forwards(self) -> None:
        web = WebHarness(self, WebConfig(trusted_proxies=("10.0.0.0/8",)))
        headers = [("X-Forwarded-For", "192.0.2.1, 198.51.100.7, 10.1.1.1")]
        client = web.open(peer="10.0.0.1", headers=headers)
        client.send("NICK ann", "USER ann 0 * :Ann")
        client.frames()
        conn = web.server.find_user("ann")
        assert conn is not None
        self.assertEqual(conn.host, "198.51.100.7")
        client.send("WHOIS ann")
        self.assertIn("198.51.100.7", client.lines()[0])

    def test_forwarded_address_counts_for_limits(self) -> None:
        web = WebHarness(
            self, WebConfig(trusted_proxies=("10.0.0.1",)), max_per_address=1
        )
        web.open(peer="10.0.0.1", headers=[("X-Forwarded-For", "198.51.100.7")])
        other = web.open(peer="10.0.0.1", headers=[("X-Forwarded-For", "198.51.100.8")])
        self.assertEqual(other.frames(), [])
        same = web.connect(peer="10.0.0.1")
        same.request(handshake(headers=[("X-Forwarded-For", "198.51.100.7")]))
        self.assertIn(b"Too many connections", same.frames()[0].payload)

    def test_forwarded_scheme(self) -> None:
        web = WebHarness(self, WebConfig(trusted_proxies=("10.0.0.1",)))
        headers = [("X-Forwarded-For", "198.51.100.7"), ("X-Forwarded-Proto", "https")]
        client = web.open(
            peer="10.0.0.1",
            host="chat.example.org",
            origin="https://chat.example.org",
            headers=headers,
        )
        client.send("NICK ann", "USER ann 0 * :Ann")
        conn = web.server.find_user("ann")
        assert conn is not None
        self.assertTrue(conn.secure)

    def test_plain_http_is_not_secure(self) -> None:
        web = WebHarness(self)
        client = web.open()
        client.send("NICK ann", "USER ann 0 * :Ann")
        conn = web.server.find_user("ann")
        assert conn is not None
        self.assertFalse(conn.secure)


class ConnectionCapTests(TestCase):
    """Open HTTP connections per address on a web listener."""

    def connect(self, cap: ConnectionCap, host: str) -> ByteTransport:
        address = IPv4Address("TCP", host, 50000)
        transport = ByteTransport(address)
        protocol = cap.buildProtocol(address)
        transport.protocol = protocol
        protocol.makeConnection(transport)
        return transport

    def test_cap(self) -> None:
        web = WebHarness(
            self, WebConfig(trusted_proxies=("10.0.0.1",)), max_per_address=2
        )
        cap = ConnectionCap(web.site, web.server)
        allowed = cap.cap()
        self.assertEqual(allowed, 2 + BROWSER_CONNECTIONS)
        opened = [self.connect(cap, "203.0.113.5") for _ in range(allowed)]
        self.assertFalse(any(t.aborted for t in opened))
        refused = self.connect(cap, "203.0.113.5")
        self.assertTrue(refused.aborted)
        self.assertEqual(web.server.stats["connections_refused"], 1)
        # Others, exempt addresses and trusted proxies are not held back.
        self.assertFalse(self.connect(cap, "203.0.113.6").aborted)
        self.assertFalse(self.connect(cap, "127.0.0.1").aborted)
        for _ in range(allowed + 1):
            self.assertFalse(self.connect(cap, "10.0.0.1").aborted)
        # A closed connection makes room.
        refused.protocol.connectionLost(Failure(ConnectionDone()))
        opened[0].protocol.connectionLost(Failure(ConnectionDone()))
        self.assertFalse(self.connect(cap, "203.0.113.5").aborted)
        self.assertTrue(self.connect(cap, "203.0.113.5").aborted)

    def test_websocket_through_the_cap(self) -> None:
        web = WebHarness(self)
        cap = ConnectionCap(web.site, web.server)
        transport = self.connect(cap, "203.0.113.5")
        transport.protocol.dataReceived(handshake())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101"))
        self.assertEqual(len(web.server.connections), 1)


class _Sink:
    """Records what a `LineTransport` asks of its WebSocket."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.closed = 0
        self.aborted = 0

    def send_line(self, line: bytes) -> None:
        self.lines.append(line)

    def close(self) -> None:
        self.closed += 1

    def abort(self) -> None:
        self.aborted += 1


class LineTransportTests(TestCase):
    def setUp(self) -> None:
        self.sink = _Sink()
        peer = IPv4Address("TCP", "198.51.100.7", 0)
        self.bytes = ByteTransport(IPv4Address("TCP", "10.0.0.1", 4000))
        self.traffic = Traffic()
        self.transport = LineTransport(self.sink, self.bytes, peer, self.traffic)

    def test_lines_split_across_writes(self) -> None:
        self.transport.write(b"PING :a\r\nPI")
        self.assertEqual(self.sink.lines, [b"PING :a"])
        self.transport.write(b"NG :b\r")
        self.transport.writeSequence([b"\n", b"PING :c\r\nPING :d\r\n"])
        self.assertEqual(
            self.sink.lines, [b"PING :a", b"PING :b", b"PING :c", b"PING :d"]
        )
        self.assertEqual(
            self.traffic.bytes_out, len(b"PING :a\r\nPING :b\r\nPING :c\r\nPING :d\r\n")
        )

    def test_close_once_then_nothing_more(self) -> None:
        self.transport.loseConnection()
        self.transport.loseConnection()
        self.transport.write(b"PING :late\r\n")
        self.assertEqual(self.sink.closed, 1)
        self.assertEqual(self.sink.lines, [])
        self.transport.abortConnection()
        self.assertEqual(self.sink.aborted, 1)

    def test_addresses_and_producers(self) -> None:
        self.assertEqual(self.transport.getPeer().host, "198.51.100.7")
        self.assertEqual(self.transport.getHost(), self.bytes.getHost())
        self.transport.pauseProducing()
        self.assertEqual(self.bytes.producerState, "paused")
        self.transport.resumeProducing()
        self.assertEqual(self.bytes.producerState, "producing")
        self.assertFalse(ISSLTransport.providedBy(self.transport))
        secure = SecureLineTransport(self.sink, self.bytes, self.transport.getPeer())
        self.assertTrue(ISSLTransport.providedBy(secure))
