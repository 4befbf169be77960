"""The web listener end to end: real loopback TLS, autobahn's client, and a
TLS IRC client on the same server."""

from __future__ import annotations

from pathlib import Path

from OpenSSL import SSL
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    connectProtocol,
    wrapClientTLS,
)
from twisted.internet.ssl import Certificate
from twisted.logger import capturedLogs
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, readBody
from twisted.web.iweb import IResponse

from chat.config import WebConfig
from chat.tls import DEV_CERT_FILE
from chat.web.site import CONTENT_SECURITY_POLICY
from tests.e2e_support import TLS_LOOPBACK, is_command, port_of, reactor, start_server
from tests.test_e2e import OldTLSClient, Probe
from tests.web_support import (
    LineWebSocket,
    connect_websocket,
    start_web_server,
    web_port,
)


async def get(url: str, ca_file: Path | None = None) -> tuple[IResponse, bytes]:
    """GET *url* (https trusting *ca_file*); the response and its body."""
    if ca_file is None:
        agent = Agent(reactor)
    else:
        trust = Certificate.loadPEM(ca_file.read_bytes())
        agent = Agent(reactor, BrowserLikePolicyForHTTPS(trustRoot=trust))
    response = await agent.request(b"GET", url.encode("ascii"))
    body = await readBody(response)
    return response, body


def header(response: IResponse, name: str) -> str | None:
    values = response.headers.getRawHeaders(name)
    return values[0] if values else None


class WebEndToEndTests(TestCase):
    timeout = 30

    async def websocket(
        self, server, nick: str | None = None, **kwargs
    ) -> LineWebSocket:
        ws = await connect_websocket(web_port(server), server.ca_file, **kwargs)
        server.track(ws.lines)
        if nick is not None:
            await ws.lines.register(nick)
        return ws

    async def test_websocket_user_chats_with_tls_user(self) -> None:
        server = start_web_server(self)
        ws = await self.websocket(server, "webby")
        irc = await server.client("tess")
        ws.lines.send("JOIN", "#room")
        await ws.lines.wait_for(is_command("366"))
        irc.send("JOIN", "#room")
        await ws.lines.wait_for(is_command("JOIN", "#room"))
        irc.send("PRIVMSG", "#room", "hello from IRC")
        said = await ws.lines.wait_for(is_command("PRIVMSG", "#room"))
        self.assertEqual(said.params[1], "hello from IRC")
        self.assertTrue(said.source.startswith("tess!"))
        ws.lines.send("PRIVMSG", "#room", "hello from the web é")
        heard = await irc.wait_for(is_command("PRIVMSG", "#room"))
        self.assertEqual(heard.params[1], "hello from the web é")
        self.assertEqual(heard.source, "webby!~webby@127.0.0.1")

        irc.send("WHO", "#room")
        who = await irc.wait_for(
            lambda m: m.command == "352" and m.params[5] == "webby"
        )
        self.assertEqual(who.params[3], "127.0.0.1")
        await irc.wait_for(is_command("315"))
        irc.send("WHOIS", "webby")
        await irc.wait_for(is_command("311", "tess", "webby"))
        secure = await irc.wait_for(lambda m: m.command in ("671", "318"))
        self.assertEqual(secure.command, "671")

    async def test_binary_subprotocol(self) -> None:
        server = start_web_server(self)
        ws = await self.websocket(server, "bin", protocols=("binary.ircv3.net",))
        self.assertTrue(ws.binary)
        await ws.lines.sync()

    async def test_wrong_origin_refused(self) -> None:
        server = start_web_server(self)
        with self.assertRaises(ConnectionError):
            await connect_websocket(
                web_port(server), server.ca_file, origin="https://evil.example"
            )
        self.assertEqual(server.service.server.connections, set())

    async def test_page_over_https(self) -> None:
        server = start_web_server(self)
        response, body = await get(
            f"https://localhost:{web_port(server)}/", server.ca_file
        )
        self.assertEqual(response.code, 200)
        self.assertEqual(header(response, "Content-Type"), "text/html; charset=utf-8")
        self.assertEqual(
            header(response, "Content-Security-Policy"), CONTENT_SECURITY_POLICY
        )
        self.assertEqual(header(response, "X-Content-Type-Options"), "nosniff")
        self.assertIn(b"<", body)
        self.assertNotIn(b"<script>", body.lower())  # no inline scripts

    async def test_script_over_https(self) -> None:
        server = start_web_server(self)
        response, _ = await get(
            f"https://localhost:{web_port(server)}/app.js", server.ca_file
        )
        self.assertEqual(response.code, 200)
        self.assertEqual(
            header(response, "Content-Type"), "text/javascript; charset=utf-8"
        )

    async def test_dev_http(self) -> None:
        server = start_web_server(self, dev_http=True)
        port = web_port(server, secure=False)
        response, _ = await get(f"http://localhost:{port}/")
        self.assertEqual(response.code, 200)
        ws = await connect_websocket(port, None)
        server.track(ws.lines)
        await ws.lines.register("plain")
        conn = server.service.server.find_user("plain")
        assert conn is not None
        self.assertFalse(conn.secure)

    async def test_shutdown_says_error(self) -> None:
        server = start_web_server(self)
        ws = await self.websocket(server, "leaving")
        await server.service.stopService()
        error = await ws.lines.wait_for(is_command("ERROR"))
        self.assertIn("Server shutting down", error.params[0])
        await ws.lines.lost
        self.assertEqual(ws.close_code, 1000)

    async def test_failed_handshakes_count_on_irc_and_web_listeners(self) -> None:
        server = start_web_server(self)
        for port in (server.tls_port, web_port(server)):
            probe = Probe()
            endpoint = wrapClientTLS(
                OldTLSClient(SSL.TLS1_1_VERSION),
                TCP4ClientEndpoint(reactor, "127.0.0.1", port),
            )
            await connectProtocol(endpoint, probe)
            await probe.done
            self.assertEqual(probe.data, b"")
        # One each: chat.transport for IRC, Twisted's TLS for the web.
        self.assertEqual(server.service.handshake_failures(), 2)

    async def test_reload_changes_the_certificate(self) -> None:
        server = start_web_server(self)
        ws = await self.websocket(server)
        before = ws.transport.getPeerCertificate().digest("sha256")
        ws.sendClose(1000)
        await ws.lines.lost
        (server.ca_file.parent / DEV_CERT_FILE).unlink()  # a new one on reload
        self.assertTrue(server.service.reload())
        again = await self.websocket(server, "again")
        after = again.transport.getPeerCertificate().digest("sha256")
        self.assertNotEqual(before, after)

    async def test_dev_http_listens_on_loopback_only(self) -> None:
        with capturedLogs() as events:
            server = start_server(self, TLS_LOOPBACK, web=WebConfig(dev_http=0))
        (listener,) = [
            lst
            for lst in server.service.listeners
            if lst.description.startswith("web:")
        ]
        assert listener.port is not None
        address = listener.port.getHost()
        assert isinstance(address, IPv4Address)
        self.assertEqual(address.host, "127.0.0.1")
        port = port_of(listener.port)
        self.assertEqual(server.service.web_port(secure=False), port)
        announced = [e for e in events if "Web client" in e.get("log_format", "")]
        self.assertEqual([e["port"] for e in announced], [port])
        response, _ = await get(f"http://localhost:{port}/")
        self.assertEqual(response.code, 200)
