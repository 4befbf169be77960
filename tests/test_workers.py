"""``--workers N``: worker processes behind one port, one network."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from chat.config import Cluster, ConfigError, ServerConfig
from chat.service import make_supervisor
from chat.workers import SupervisorWatch, WorkerSupervisor
from tests.e2e_support import LineClient, connect_plain, is_command
from tests.redis_support import free_port, start_redis

ROOT = Path(__file__).parent.parent
CLIENTS = 16


class WorkersTests(TestCase):
    timeout = 60

    def supervisor(self, redis_url: str, port: int) -> subprocess.Popen[bytes]:
        data = Path(self.mktemp()).absolute()
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from twisted.scripts.twistd import run; run()",
                "--nodaemon",
                "--pidfile=",
                "--logfile=-",
                "chat",
                "--workers",
                "2",
                "--cluster",
                redis_url,
                "--node-name",
                "w",
                "--listen",
                f"tcp:{port}:interface=127.0.0.1",
                "--data-dir",
                str(data),
                "--cert-dir",
                str(data / "certs"),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(child.wait)
        self.addCleanup(lambda: child.poll() is None and child.kill())
        return child

    async def connect(self, port: int) -> LineClient:
        for _ in range(100):
            try:
                return await connect_plain(port)
            except Exception:
                await deferLater(reactor, 0.1, lambda: None)
        raise AssertionError("the workers never listened")

    async def whois_node(self, client: LineClient, nick: str) -> str:
        client.send("WHOIS", nick)
        reply = await client.wait_for(is_command("312"))
        return reply.params[2]

    async def test_connections_spread_over_workers_that_form_one_network(
        self,
    ) -> None:
        redis = start_redis(self)
        port = free_port()
        supervisor = self.supervisor(redis.url, port)
        for _ in range(200):  # both workers listen once they are linked
            if redis.command("HLEN", "chat:nodes") == b":2":
                break
            await deferLater(reactor, 0.05, lambda: None)
        clients = []
        for number in range(CLIENTS):
            client = await self.connect(port)
            await client.register(f"user{number}")
            self.addCleanup(client.transport.loseConnection)
            clients.append(client)
        first = clients[0]
        nodes = [await self.whois_node(first, f"user{n}") for n in range(CLIENTS)]
        self.assertEqual(set(nodes), {"w-0", "w-1"}, nodes)
        # Two users on different workers talk.
        other = next(n for n, node in enumerate(nodes) if node != nodes[0])
        first.send("PRIVMSG", f"user{other}", "across workers")
        got = await clients[other].wait_for(is_command("PRIVMSG"))
        self.assertEqual(got.params[-1], "across workers")
        supervisor.send_signal(signal.SIGTERM)
        # twistd ends by the signal it was stopped with, once all is closed.
        self.assertEqual(await deferLater(reactor, 0, supervisor.wait), -signal.SIGTERM)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), 1).close()


class SupervisorTests(TestCase):
    def test_a_worker_stops_when_its_supervisor_is_gone(self) -> None:
        clock = MemoryReactorClock()
        watch = SupervisorWatch(clock)
        watch.startService()
        clock.advance(1)
        self.assertFalse(clock.hasStopped)
        watch.parent_pid = -1  # as if the supervisor had died
        clock.advance(1)
        self.assertTrue(clock.hasStopped)

    def test_workers_need_a_cluster(self) -> None:
        config = ServerConfig(port=None, listen=("tcp:0",), workers=2)
        with self.assertRaises(ConfigError) as raised:
            make_supervisor(config, [])
        self.assertIn("--cluster", str(raised.exception))

    def test_a_bad_redis_url_is_one_error(self) -> None:
        config = ServerConfig(
            port=None, listen=("tcp:0",), workers=2, cluster=Cluster(redis="http://x")
        )
        with self.assertRaises(ConfigError) as raised:
            make_supervisor(config, [])
        self.assertIn("redis://", str(raised.exception))

    def test_a_worker_that_exits_is_started_again(self) -> None:

        class Reactor(MemoryReactorClock):
            def __init__(self) -> None:
                super().__init__()
                self.spawned: list[list[str]] = []

            def spawnProcess(self, protocol, executable, args, **kw):  # type: ignore[no-untyped-def]
                self.spawned.append(args)
                protocol.transport = None

        fake = Reactor()
        supervisor = WorkerSupervisor(fake, 2, ["--cluster", "redis://x"])
        supervisor.startService()
        self.assertEqual([args[-1] for args in fake.spawned], ["0", "1"])
        supervisor.ended(1, Failure(RuntimeError("died")))
        fake.advance(1.0)
        self.assertEqual(fake.spawned[-1][-2:], ["--worker", "1"])
        supervisor.ended(1, Failure(RuntimeError("died again")))
        fake.advance(1.0)
        self.assertEqual(len(fake.spawned), 3, "the next start waits longer")
        fake.advance(1.0)
        self.assertEqual(len(fake.spawned), 4)
