"""The test servers: Redis (tests.redis_support) with the txredisapi client
that cluster mode uses (commands, PUBLISH reaching a SUBSCRIBE), and
PostgreSQL (tests.services_support): fresh databases, never as root,
skipping only outside CI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import txredisapi
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.trial.unittest import SkipTest, TestCase

from tests import services_support
from tests.e2e_support import TIMEOUT, reactor
from tests.redis_support import start_redis


class Subscriber(txredisapi.SubscriberProtocol):
    """Keeps every published message; `next_message` waits for one."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[str, str]] = []
        self._waiting: list[Deferred[tuple[str, str]]] = []

    def messageReceived(self, pattern: Any, channel: str, message: str) -> None:
        self.received.append((channel, message))
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback((channel, message))

    def next_message(self) -> Deferred[tuple[str, str]]:
        waiter: Deferred[tuple[str, str]] = Deferred()
        self._waiting.append(waiter)
        return waiter.addTimeout(TIMEOUT, reactor)


class RedisFixtureTests(TestCase):
    def setUp(self) -> None:
        self.server = start_redis(self)

    async def connect(self) -> Any:
        connection = await txredisapi.Connection(
            "127.0.0.1", self.server.port, dbid=0, reconnect=False
        )
        self.addCleanup(connection.disconnect)
        await connection.flushdb()
        return connection

    async def test_set_and_get(self) -> None:
        connection = await self.connect()
        await connection.set("nick:alice", "node-a")
        self.assertEqual(await connection.get("nick:alice"), "node-a")
        self.assertEqual(await connection.incr("msgid"), 1)
        self.assertIsNone(await connection.get("nick:bob"))

    async def test_publish_reaches_a_subscriber(self) -> None:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.server.port)
        subscriber = await connectProtocol(endpoint, Subscriber())
        self.addCleanup(subscriber.transport.loseConnection)
        await subscriber.whenConnected()
        await subscriber.subscribe("chat:#chan")
        connection = await self.connect()
        arrived = subscriber.next_message()
        receivers = await connection.publish("chat:#chan", "PRIVMSG #chan :hi")
        self.assertEqual(receivers, 1)
        self.assertEqual(await arrived, ("chat:#chan", "PRIVMSG #chan :hi"))

    async def test_restart_keeps_the_port(self) -> None:
        port = self.server.port
        self.server.stop()
        self.server.start()
        self.assertEqual(self.server.port, port)
        connection = await self.connect()
        self.assertEqual(await connection.ping(), "PONG")


class FixtureTests(TestCase):
    def test_missing_binaries_skip_only_outside_ci(self) -> None:
        self.patch(services_support.os, "environ", {})
        self.assertIsInstance(services_support.unavailable("no redis"), SkipTest)
        self.patch(services_support.os, "environ", {"CI": "true"})
        error = services_support.unavailable("no redis")
        self.assertIsInstance(error, services_support.ServiceError)
        self.assertIn("CI must not skip", str(error))

    def test_each_test_gets_an_empty_database(self) -> None:
        import psycopg

        first = services_support.postgres_database()
        second = services_support.postgres_database()
        self.assertNotEqual(first, second)
        with psycopg.connect(first) as conn:
            conn.execute("CREATE TABLE mine (x int)")
        with psycopg.connect(second) as conn:
            tables = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            ).fetchone()
            self.assertEqual(tables, (0,))
            user = conn.execute("SELECT current_user").fetchone()
            self.assertEqual(user, (services_support.ROLE,))

    def test_postgresql_never_runs_as_root(self) -> None:
        import psycopg

        server = services_support.postgres()
        with psycopg.connect(server.dsn()) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            # While the connection is open: its backend exits with it.
            owner = Path(f"/proc/{row[0]}").stat().st_uid
        self.assertNotEqual(owner, 0)
