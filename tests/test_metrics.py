"""Metrics: traffic counting, the collector and the page over real HTTP."""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, readBody

from chat.accounts import Accounts
from chat.config import ServerConfig
from chat.message import Message
from chat.metrics import ServerCollector
from chat.server import ChatServer
from chat.storage.sqlite import SQLiteStore
from chat.timing import OperationTimer
from chat.traffic import Traffic
from chat.transport import DirectFactory
from tests.e2e_support import is_command, port_of, reactor, start_server
from tests.test_e2e import handshake


def samples(families: Any) -> dict[str, float]:
    return {s.name: s.value for family in families for s in family.samples}


def labelled(families: Any, name: str) -> dict[str, float]:
    """The samples called *name*, by their ``store`` label."""
    return {
        s.labels["store"]: s.value
        for family in families
        for s in family.samples
        if s.name == name
    }


class StorageLatencyTests(TestCase):
    def test_store_timers_are_reported_by_store(self) -> None:
        server = ChatServer(ServerConfig(), Clock())
        store = SQLiteStore(":memory:")
        server.accounts = Accounts(store, server.clock)
        self.successResultOf(store.list_accounts())
        self.successResultOf(store.list_channels())
        collector = ServerCollector(server, Traffic(), lambda: 0)
        families = list(collector.collect())
        self.assertEqual(
            labelled(families, "chat_storage_operations_total"), {"accounts": 2}
        )
        seconds = labelled(families, "chat_storage_seconds_total")
        self.assertGreater(seconds["accounts"], 0)

    def test_timer_counts_failures_too(self) -> None:
        timer = OperationTimer()

        def broken() -> None:
            raise ValueError("no")

        self.assertRaises(ValueError, timer.timed, broken)
        self.assertEqual(timer.timed(max, 1, 2), 2)
        self.assertEqual(timer.count, 2)


class CountingTests(TestCase):
    def test_counts_bytes_and_lines_both_ways(self) -> None:
        traffic = Traffic()
        server = ChatServer(ServerConfig(), Clock())
        factory = DirectFactory(server, traffic, Clock())
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        transport = StringTransport()
        protocol.makeConnection(transport)
        data = b"NICK a\r\nUSER a 0 * :A\r\n"
        protocol.dataReceived(data)
        self.assertEqual((traffic.bytes_in, traffic.lines_in), (len(data), 2))
        self.assertEqual(traffic.bytes_out, len(transport.value()))
        self.assertGreater(transport.value().count(b"\n"), 5)
        protocol.writeSequence([b"a\r\n", b"b\r\n"])
        self.assertEqual(traffic.bytes_out, len(transport.value()))

    def test_collector_reads_state_when_collected(self) -> None:
        server = ChatServer(ServerConfig(), Clock())
        traffic = Traffic(bytes_in=10, bytes_out=20, lines_in=1)
        failures = [3]
        collector = ServerCollector(server, traffic, lambda: failures[0])
        server.stats["flood_kills"] = 4
        server.relay(Message("PRIVMSG", ("#a", "x"), "n!u@h"))
        values = samples(collector.collect())
        self.assertEqual(values["chat_connections"], 0)
        self.assertEqual(values["chat_received_bytes_total"], 10)
        self.assertEqual(values["chat_messages_relayed_total"], 1)
        self.assertEqual(values["chat_tls_handshake_failures_total"], 3)
        self.assertEqual(values["chat_flood_kills_total"], 4)
        failures[0] = 5
        values = samples(collector.collect())
        self.assertEqual(values["chat_tls_handshake_failures_total"], 5)


class MetricsEndpointTests(TestCase):
    async def scrape(self, port: int) -> dict[str, float]:
        response = await Agent(reactor).request(
            b"GET", f"http://127.0.0.1:{port}/metrics".encode()
        )
        self.assertEqual(response.code, 200)
        self.assertIn(b"text/plain", response.headers.getRawHeaders(b"content-type")[0])
        body = (await readBody(response)).decode()
        return samples(text_string_to_metric_families(body))

    async def test_page_reports_the_running_server(self) -> None:
        server = start_server(self, metrics="tcp:0:interface=127.0.0.1")
        assert server.service.metrics is not None
        port = port_of(server.service.metrics.port)
        a, b = await server.client("a"), await server.client("b")
        for client in (a, b):
            client.send("JOIN", "#m")
            await client.wait_for(is_command("366"))
        a.send("PRIVMSG", "#m", "hi")
        await b.wait_for(is_command("PRIVMSG", "#m", "hi"))
        await handshake(server, SSL.TLS1_1_VERSION)
        values = await self.scrape(port)
        self.assertEqual(values["chat_registered_users"], 2)
        self.assertEqual(values["chat_channels"], 1)
        self.assertGreaterEqual(values["chat_connections"], 2)
        self.assertEqual(values["chat_tls_handshake_failures_total"], 1)
        self.assertGreater(values["chat_received_messages_total"], 6)
        self.assertGreater(
            values["chat_sent_bytes_total"], values["chat_received_bytes_total"]
        )
        self.assertEqual(values["chat_flood_kills_total"], 0)
