"""``python -m bench.tls_cost``: the server side of TLS alone, per connection
and per record: pyOpenSSL (what `chat.transport.TLSProtocol` runs, with the
server's own `chat.tls.ReloadableServerTLS` context) next to the standard
library's ``ssl.SSLObject``, both over memory BIOs, in one process.

For each kind a fresh process handshakes *N* server objects with standard
library clients over memory BIOs (TLS 1.3), exchanges a few lines (a 2 KB
burst from the server, a short line from the client), drops the clients
and reports (RSS after the N - RSS after a warm-up) / N, then the CPU
seconds (``time.process_time``) per 120-byte record written and read back
from the outgoing BIO.  No sockets, no reactor: what the TLS library costs,
not the server.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from OpenSSL import SSL

from bench.procstat import rss_kb
from chat.tls import ReloadableServerTLS, ensure_dev_certificate, server_options

KINDS = ("pyopenssl", "stdlib")
#: Objects made before the RSS baseline (first-use costs left out).
WARMUP = 50
#: Ciphertext asked of pyOpenSSL's outgoing BIO at a time (as the transport).
BIO_READ_SIZE = 16384
#: A line as a busy channel relays it.
LINE = b":nick!user@host PRIVMSG #bench :" + b"x" * 82 + b"\r\n"


class _PyOpenSSLServer:
    """The server side as `chat.transport.TLSProtocol` drives it."""

    def __init__(self, tls: ReloadableServerTLS) -> None:
        self.tls = tls.serverConnectionForTLS(None)
        self.tls.set_accept_state()

    def feed(self, data: bytes) -> None:
        self.tls.bio_write(data)

    def drain(self) -> bytes:
        # As the transport does: read until a read comes back short.
        out = []
        while True:
            try:
                chunk = self.tls.bio_read(BIO_READ_SIZE)
            except SSL.WantReadError:
                break
            out.append(chunk)
            if len(chunk) < BIO_READ_SIZE:
                break
        return b"".join(out)

    def handshake(self) -> None:
        with suppress(SSL.WantReadError):
            self.tls.do_handshake()

    def recv(self) -> None:
        with suppress(SSL.WantReadError):
            self.tls.recv(65536)

    def send(self, data: bytes) -> None:
        self.tls.send(data)


class _StdlibServer:
    """The server side on ``ssl.SSLObject`` over ``ssl.MemoryBIO``."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)

    def feed(self, data: bytes) -> None:
        self.incoming.write(data)

    def drain(self) -> bytes:
        return self.outgoing.read()

    def handshake(self) -> None:
        with suppress(ssl.SSLWantReadError):
            self.tls.do_handshake()

    def recv(self) -> None:
        with suppress(ssl.SSLWantReadError):
            self.tls.read(65536)

    def send(self, data: bytes) -> None:
        self.tls.write(data)


Server = _PyOpenSSLServer | _StdlibServer


def connect(server: Server, client_context: ssl.SSLContext) -> None:
    """Handshake *server* with a standard library client, then exchange a
    few lines (a 2 KB burst from the server, a PING from the client)."""
    c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(c_in, c_out, server_hostname="localhost")
    for _ in range(10):
        try:
            client.do_handshake()
        except ssl.SSLWantReadError:
            pass
        else:
            break
        server.feed(c_out.read())
        server.handshake()
        c_in.write(server.drain())
    else:
        raise RuntimeError("the handshake did not complete")
    server.feed(c_out.read())
    server.send(b"x" * 2000 + b"\r\n")
    c_in.write(server.drain())
    with suppress(ssl.SSLWantReadError):
        while client.read(65536):
            pass
    client.write(b"PING :hello\r\n")
    server.feed(c_out.read())
    server.recv()
    server.drain()


def _servers(cert_dir: Path) -> tuple[dict[str, Callable[[], Server]], ssl.SSLContext]:
    """A maker of server objects per kind, and the clients' context."""
    dev = ensure_dev_certificate(cert_dir)
    ours = ReloadableServerTLS(server_options(dev.cert, dev.key))
    std = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    std.minimum_version = ssl.TLSVersion.TLSv1_2
    std.load_cert_chain(dev.cert, dev.key)
    makers: dict[str, Callable[[], Server]] = {
        "pyopenssl": lambda: _PyOpenSSLServer(ours),
        "stdlib": lambda: _StdlibServer(std),
    }
    return makers, ssl.create_default_context(cafile=str(dev.ca))


def _trimmed_rss() -> int:
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return rss_kb(os.getpid())


def measure(kind: str, count: int, records: int) -> dict[str, Any]:
    """One kind, in this process: KB per connection and µs per record."""
    with tempfile.TemporaryDirectory() as tmp:
        makers, client = _servers(Path(tmp))
        make = makers[kind]
        kept: list[Server] = []
        for _ in range(WARMUP):
            kept.append(make())
            connect(kept[-1], client)
        before = _trimmed_rss()
        for _ in range(count):
            kept.append(make())
            connect(kept[-1], client)  # the client is dropped: servers only
        after = _trimmed_rss()
        server = kept[-1]
        started = time.process_time()
        for _ in range(records):
            server.send(LINE)
            server.drain()
        cpu = time.process_time() - started
    return {
        "kind": kind,
        "version": ssl.OPENSSL_VERSION
        if kind == "stdlib"
        else SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode(),
        "connections": count,
        "kb_per_connection": round((after - before) / count, 1),
        "records": records,
        "us_per_record": round(cpu / records * 1e6, 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tls_cost")
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--one", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.connections, args.records)))
        return
    for kind in KINDS:
        command = [sys.executable, "-m", "bench.tls_cost", "--one", kind]
        command += ["--connections", str(args.connections)]
        command += ["--records", str(args.records)]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
