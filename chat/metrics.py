"""Prometheus metrics over HTTP (``--metrics``), read at each scrape.

The `ServerCollector` reads the traffic counted by `chat.traffic`, the
server's own state and counters (``ChatServer.stats``) and the TLS handshake
failures when Prometheus scrapes the page, so nothing is computed between
scrapes.  This module needs the prometheus-client package; the service
imports it only when ``--metrics`` is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from chat.history.buffer import WriteBuffer
from chat.timing import OperationTimer
from chat.traffic import Traffic

if TYPE_CHECKING:
    from chat.server import ChatServer

#: Help texts of the counters in ``ChatServer.stats``, by name.
STAT_HELP = {
    "connections_refused": "Connections refused by a connection limit",
    "flood_delays": "Input lines delayed by flood control",
    "flood_kills": "Clients disconnected for flooding",
    "sendq_kills": "Clients disconnected for a full send queue",
    "messages_relayed": "Messages relayed (each counted once, whatever its recipients)",
}


class ServerCollector(Collector):
    """The chat server's metrics, read at each scrape."""

    def __init__(
        self,
        server: ChatServer,
        traffic: Traffic,
        handshake_failures: Callable[[], int],
    ) -> None:
        self._server = server
        self._traffic = traffic
        self._handshake_failures = handshake_failures

    def collect(self) -> Iterator[Metric]:
        server, traffic = self._server, self._traffic
        yield GaugeMetricFamily(
            "chat_connections", "Open client connections", len(server.connections)
        )
        yield GaugeMetricFamily(
            "chat_registered_users",
            "Registered users of this server's own connections",
            server.local_registered,
        )
        yield GaugeMetricFamily(
            "chat_network_users",
            "Registered users of the whole network (every node of a cluster)",
            server.registered_count,
        )
        yield GaugeMetricFamily("chat_channels", "Channels", len(server.channels))
        yield CounterMetricFamily(
            "chat_received_bytes", "IRC bytes received", traffic.bytes_in
        )
        yield CounterMetricFamily(
            "chat_sent_bytes", "IRC bytes sent", traffic.bytes_out
        )
        yield CounterMetricFamily(
            "chat_received_messages", "IRC lines received", traffic.lines_in
        )
        yield CounterMetricFamily(
            "chat_tls_handshake_failures",
            "TLS connections closed before the handshake completed",
            self._handshake_failures(),
        )
        operations = CounterMetricFamily(
            "chat_storage_operations", "Storage calls", labels=["store"]
        )
        seconds = CounterMetricFamily(
            "chat_storage_seconds", "Time spent in storage calls", labels=["store"]
        )
        for store_name, store in (
            ("history", server.history),
            ("accounts", server.accounts.store),
        ):
            timer = getattr(store, "timer", None)
            if isinstance(timer, OperationTimer):
                operations.add_metric([store_name], timer.count)
                seconds.add_metric([store_name], timer.seconds)
        yield operations
        yield seconds
        buffer = getattr(server.history, "buffer", None)
        if isinstance(buffer, WriteBuffer):
            yield GaugeMetricFamily(
                "chat_history_buffered",
                "History messages waiting in memory for the database",
                len(buffer),
            )
            yield CounterMetricFamily(
                "chat_history_dropped",
                "History messages dropped while the database was away",
                buffer.dropped,
            )
        for name, value in server.stats.items():
            yield CounterMetricFamily(f"chat_{name}", STAT_HELP.get(name, name), value)


class MetricsPage(Resource):
    """The Prometheus text format of *registry*, on every path."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self.registry)


class QuietSite(Site):
    """A `Site` that keeps scrapes out of the server log."""

    noisy = False

    def log(self, request: http.Request) -> None:
        """No access log."""


def metrics_site(collector: ServerCollector) -> Site:
    """The HTTP site serving *collector*'s metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return QuietSite(MetricsPage(registry))
