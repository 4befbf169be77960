"""The web listener: the browser client's files and IRC over WebSocket.

This docstring is the contract between the server side (``chat/web/*.py``)
and the browser client (``chat/web/static/``).

Listening
    ``--web PORT`` (TOML ``[web] port``) serves HTTPS and WSS on every
    interface, with the certificate of the IRC TLS listeners (and its
    ``SIGHUP`` reload).  ``--web-dev-http PORT`` (``[web] dev-http``) serves
    plain HTTP and WS on 127.0.0.1 only, for development (browsers treat
    ``http://localhost`` as a secure context).  Any other endpoint:
    ``--listen web:tls:tcp:8443:interface=::`` (TLS) or
    ``--listen web:tcp:8081:interface=127.0.0.1`` (plaintext, only where
    asked for).  ``make run`` serves the client on https://localhost:8443/
    and http://localhost:8081/.

URLs
    ``/`` and below: the files of ``chat/web/static/`` (``/`` is
    ``index.html``; no directory listings; unknown paths are 404).  Every
    response carries ``Content-Security-Policy: default-src 'self';
    script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src
    'self' wss:; object-src 'none'; base-uri 'none'; form-action 'none';
    frame-ancestors 'none'`` (so: no inline scripts, styles or event
    handlers; no external resources), ``X-Content-Type-Options: nosniff``,
    ``Referrer-Policy: no-referrer`` and ``X-Frame-Options: DENY``.
    ``/socket``: the WebSocket (the path gamja uses by default).  The
    client connects to ``wss://<host>/socket`` when the page came over
    https, ``ws://<host>/socket`` over http (same host and port as the page).

WebSocket (ircv3.net/specs/extensions/websocket)
    Subprotocols ``text.ircv3.net`` and ``binary.ircv3.net``: the server
    takes the first one the client offers; without either (or with none
    offered) it speaks text frames.  One IRC line per WebSocket message,
    without CR/LF; a trailing CRLF or LF is tolerated, a CR or LF inside a
    message is refused with ``FAIL * INVALID_MESSAGE``.  Server lines come
    as text frames, or binary frames under ``binary.ircv3.net``.  A text
    frame that is not UTF-8 closes with 1007, a message over 8703 bytes
    (8191 of tags + 512) with 1009; when the server closes (QUIT, a limit,
    shutdown) an ``ERROR`` line comes first, then close code 1000.
    Everything else is plain IRC: the connection is an ordinary
    `chat.protocol.ChatProtocol` with the same commands, fakelag, send
    queue, per-address limits and line lengths as a TCP client, and it is
    shown as secure over TLS.  WebSocket ping frames are answered and count
    as empty lines for fakelag.

Origins and proxies (TOML ``[web]``)
    ``allowed-origins = ["https://chat.example.org"]`` (``"*"`` for any):
    a WebSocket handshake whose ``Origin`` is not listed gets HTTP 403 and
    one log line.  The default allows the page's own origin only:
    ``https://`` (or ``http://`` without TLS) plus the request's ``Host``.
    A handshake without ``Origin`` (not a browser) is allowed.
    ``trusted-proxies = ["10.0.0.1", "fd00::/8"]`` (default none): only
    when the TCP peer is one of these does ``X-Forwarded-For`` (its
    rightmost address not itself a trusted proxy) become the client's
    address for the limits and WHOIS, and ``X-Forwarded-Proto`` the scheme.

Tests
    ``tests.web_support``: ``start_web_server(case, dev_http=False)`` starts
    the whole service on 127.0.0.1 (an IRC TLS listener, a web TLS listener
    and with *dev_http* a plain one) and returns the usual
    ``tests.e2e_support.RunningServer``; ``web_port(server)`` and
    ``web_port(server, secure=False)`` are the web ports.  The page is then
    ``https://localhost:<port>/`` trusting ``server.ca_file`` (the
    development CA), or ``http://localhost:<port>/``.
    ``connect_websocket(port, ca_file)`` is a WebSocket IRC client (autobahn)
    whose ``.lines`` is a ``LineClient``; ``WebHarness`` drives the site on a
    Clock frame by frame.
"""
