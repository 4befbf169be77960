"""The web site: the browser client's static files and the WebSocket.

`web_site` makes a twisted.web `Site` serving ``chat/web/static/`` at ``/``
(a `File` resource without directory listings) and the IRC WebSocket at
``/socket`` (autobahn's `WebSocketResource`).  Every HTTP response carries
the security headers of `SECURITY_HEADERS`; there is no access log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autobahn.twisted.resource import WebSocketResource
from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import IResource
from twisted.web.server import Request, Site
from twisted.web.static import File

from chat.server import ChatServer
from chat.traffic import Traffic
from chat.web.websocket import IRCWebSocketFactory

#: Where the browser client's files are installed.
STATIC = Path(__file__).parent / "static"
#: The path of the WebSocket, under the site's root.
SOCKET_PATH = b"socket"
#: Seconds an idle HTTP connection (not a WebSocket) stays open.
HTTP_IDLE_TIMEOUT = 60

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self' wss:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    b"Content-Security-Policy": CONTENT_SECURITY_POLICY.encode("ascii"),
    b"X-Content-Type-Options": b"nosniff",
    b"Referrer-Policy": b"no-referrer",
    b"X-Frame-Options": b"DENY",
    b"Cache-Control": b"no-cache",
}
#: Types of the client's files, whatever the system's MIME table says
#: (with nosniff a script must be served as one).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}


class StaticFiles(File):
    """A directory of files: ``index.html`` for a directory, never a listing."""

    indexNames = ["index.html"]
    contentTypes = {**File.contentTypes, **CONTENT_TYPES}

    def directoryListing(self) -> IResource:
        return self.forbidden


class SecureRequest(Request):
    """A request whose response carries `SECURITY_HEADERS`."""

    def process(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.setHeader(name, value)
        super().process()


class WebSite(Site):
    """The site, without an access log (connections are the chat's to log)."""

    noisy = False
    #: The WebSocket factory under ``/socket``.
    websocket: IRCWebSocketFactory

    def log(self, request: Any) -> None:
        """No access log."""


def web_site(
    server: ChatServer,
    traffic: Traffic | None = None,
    static: Path = STATIC,
    reactor: IReactorTime | None = None,
) -> WebSite:
    """The site of *server*'s web listeners, serving the files in *static*.

    Its HTTP timeouts run on *reactor* (default: the server's clock).
    """
    root = StaticFiles(str(static), defaultType="application/octet-stream")
    websocket = IRCWebSocketFactory(server, traffic)
    root.putChild(SOCKET_PATH, WebSocketResource(websocket))
    site = WebSite(
        root,
        requestFactory=SecureRequest,
        timeout=HTTP_IDLE_TIMEOUT,
        reactor=reactor or server.clock,
    )
    site.websocket = websocket
    return site
