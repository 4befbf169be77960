"""``python -m bench.websocket_memory``: memory per idle WebSocket client
next to an idle TLS IRC client.

For each kind a fresh server process (``bench.servers.ChatServer`` plus a
``web:tls:`` listener, all on 127.0.0.1) gets *warm-up* clients, then *N*
more; every client registers (NICK/USER, waits for 001) and stays idle.
The figure is (RSS after the N - RSS after the warm-up) / N, so start-up
and first-use costs are left out.  The clients run in this process with
asyncio; the server is pinned to its own core.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import ssl
import sys
import tempfile
import time
from pathlib import Path

from bench.procstat import rss_kb
from bench.runner import cores
from bench.servers import ChatServer, free_port, raise_nofile

#: Registrations in progress at once.
CONCURRENCY = 100
#: Seconds a client may take to register.
REGISTER_TIMEOUT = 30.0


class WebChatServer(ChatServer):
    """The chat server with a TLS web listener as well."""

    def __init__(self, workdir: Path, server_cores: set[int]) -> None:
        super().__init__(workdir, server_cores)
        self.web_port = free_port()

    def command(self) -> list[str]:
        listen = "interface=127.0.0.1:backlog=4096"
        return [*super().command(), "--listen", f"web:tls:{self.web_port}:{listen}"]


def _frame(payload: bytes) -> bytes:
    """A masked text frame (short payloads only)."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


async def _registered(reader: asyncio.StreamReader) -> None:
    """Read until the welcome (001) arrives."""
    seen = b""
    while b" 001 " not in seen:
        chunk = await reader.read(65536)
        if not chunk:
            raise ConnectionError("closed before the welcome")
        seen = seen[-64:] + chunk


async def irc_client(
    port: int, context: ssl.SSLContext, nick: str
) -> asyncio.StreamWriter:
    """A registered TLS IRC client."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="localhost"
    )
    writer.write(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
    await asyncio.wait_for(_registered(reader), REGISTER_TIMEOUT)
    return writer


async def websocket_client(
    port: int, context: ssl.SSLContext, nick: str
) -> asyncio.StreamWriter:
    """A registered IRC client over a TLS WebSocket (text.ircv3.net)."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="localhost"
    )
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /socket HTTP/1.1\r\n"
            f"Host: localhost:{port}\r\n"
            f"Origin: https://localhost:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: text.ircv3.net\r\n\r\n"
        ).encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REGISTER_TIMEOUT)
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    writer.write(
        _frame(f"NICK {nick}".encode()) + _frame(f"USER {nick} 0 * :x".encode())
    )
    await asyncio.wait_for(_registered(reader), REGISTER_TIMEOUT)
    return writer


async def open_clients(
    kind: str, port: int, ca: Path, first: int, count: int
) -> list[asyncio.StreamWriter]:
    context = ssl.create_default_context(cafile=str(ca))
    connect = websocket_client if kind == "websocket" else irc_client
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> asyncio.StreamWriter:
        async with gate:
            return await connect(port, context, f"{kind[0]}{i}")

    return list(await asyncio.gather(*(one(first + i) for i in range(count))))


async def measure(
    kind: str, server: WebChatServer, clients: int, warmup: int
) -> dict[str, object]:
    port = server.web_port if kind == "websocket" else server.tls_port
    before_start = rss_kb(server.pid)
    kept = await open_clients(kind, port, server.ca, 0, warmup)
    await asyncio.sleep(1)
    base = rss_kb(server.pid)
    started = time.monotonic()
    kept += await open_clients(kind, port, server.ca, warmup, clients)
    took = time.monotonic() - started
    await asyncio.sleep(2)
    after = rss_kb(server.pid)
    for writer in kept:
        writer.close()
    return {
        "kind": kind,
        "clients": clients,
        "rss_start_kb": before_start,
        "rss_base_kb": base,
        "rss_after_kb": after,
        "kb_per_client": round((after - base) / clients, 2),
        "connect_seconds": round(took, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.websocket_memory")
    parser.add_argument("--clients", type=int, default=2000, help="per kind")
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args(argv)
    raise_nofile()
    server_cores, client_cores = cores()
    os.sched_setaffinity(0, client_cores)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ws-") as tmp:
        for kind in ("tls", "websocket"):
            server = WebChatServer(Path(tmp) / kind, server_cores)
            server.start()
            try:
                row = asyncio.run(measure(kind, server, args.clients, args.warmup))
            finally:
                server.stop()
            print(json.dumps(row), flush=True)
            rows.append(row)
    for row in rows:
        rss = f"RSS {row['rss_base_kb']} -> {row['rss_after_kb']} KB"
        print(
            f"{row['kind']:>10}: {row['kb_per_client']} KB per idle client "
            f"({row['clients']} clients, {rss})",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
