"""A Redis server for the cluster benchmarks, and what its INFO says.

Debian's ``/usr/bin/redis-server`` (or the first ``redis-server`` on PATH)
on a free loopback port, its data in a temporary directory, no
persistence; pinned to the given cores.  `info` reads ``INFO <section>``
over a plain socket (RESP), so the bench needs no Redis client library.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from bench.servers import free_port


def redis_binary() -> str:
    """The redis-server to run; a clear error when there is none."""
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(found).exists():
        raise RuntimeError(
            "redis-server is not installed (apt-get install redis-server)"
        )
    return found


class RedisProcess:
    """One redis-server on 127.0.0.1, started and stopped by the bench."""

    def __init__(self, directory: Path, cores: set[int]) -> None:
        self.directory = directory
        self.cores = cores
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        """Start it and wait until it answers PING."""
        self.directory.mkdir(parents=True, exist_ok=True)
        cores = self.cores
        self.process = subprocess.Popen(
            [
                redis_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxclients",
                "10000",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: os.sched_setaffinity(0, cores),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.command("PING") == b"PONG":
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def command(self, *words: str) -> bytes:
        """Run one command; its reply (a status or bulk string) as bytes."""
        request = f"*{len(words)}\r\n" + "".join(
            f"${len(word)}\r\n{word}\r\n" for word in words
        )
        with socket.create_connection(("127.0.0.1", self.port), 5) as sock:
            sock.sendall(request.encode())
            data = b""
            while b"\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    raise OSError("redis closed the connection")
                data += chunk
            head, _, rest = data.partition(b"\r\n")
            if head[:1] != b"$":
                return head[1:]
            size = int(head[1:])
            while len(rest) < size:
                chunk = sock.recv(65536)
                if not chunk:
                    raise OSError("redis closed the connection")
                rest += chunk
            return rest[:size]

    def info(self, section: str) -> dict[str, str]:
        """``INFO section`` as a dictionary of its ``key:value`` lines."""
        out = {}
        for line in self.command("INFO", section).decode().splitlines():
            key, sep, value = line.partition(":")
            if sep and not line.startswith("#"):
                out[key] = value
        return out

    def commandstats(self) -> dict[str, int]:
        """Calls so far of each command (``cmdstat_publish`` -> ``publish``)."""
        calls = {}
        for key, value in self.info("commandstats").items():
            fields = dict(f.split("=", 1) for f in value.split(","))
            calls[key.removeprefix("cmdstat_")] = int(fields["calls"])
        return calls

    def used_memory(self) -> int:
        """``used_memory`` in bytes."""
        return int(self.info("memory")["used_memory"])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None
