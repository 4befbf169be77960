"""End-to-end helpers: a real server on loopback and line clients over TLS.

`start_server` runs the whole service (listeners included) on port 0 with a
fresh development CA; `connect_tls` and `connect_plain` open real sockets to
it; `LineClient.wait_for` waits, with a timeout, for a matching message.
`start_network` runs two (or more) such services as the nodes of one
cluster (a Redis and a PostgreSQL database of their own) and connects each
next client to the next node; test classes that start their server through
`Serving.serve` run on either (`tests.test_cluster_suite`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from twisted.internet import reactor as _reactor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    connectProtocol,
    wrapClientTLS,
)
from twisted.internet.interfaces import IListeningPort, IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.internet.task import deferLater
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from chat.config import Cluster, ServerConfig
from chat.message import Message, parse
from chat.service import ChatService, makeService
from chat.tls import DEV_CA_FILE

reactor = cast(IReactorTime, _reactor)
#: Seconds a test waits for one expected message.
TIMEOUT = 10.0
#: The TLS listener of `start_server`: loopback only, any free port.
TLS_LOOPBACK = "tls:tcp:0:interface=127.0.0.1"
PLAIN_LOOPBACK = "tcp:0:interface=127.0.0.1"

Predicate = Callable[[Message], bool]


def is_command(command: str, *params: str) -> Predicate:
    """A predicate matching *command* whose first params are *params*."""

    def match(message: Message) -> bool:
        return (
            message.command == command
            and tuple(message.params[: len(params)]) == params
        )

    return match


class LineClient(LineReceiver):
    """An IRC connection for tests: keeps what arrives, answers PING."""

    delimiter = b"\n"
    MAX_LENGTH = 16384

    def __init__(self) -> None:
        self.inbox: list[Message] = []
        self.received: list[Message] = []
        self._waiters: list[tuple[Predicate, Deferred[Message]]] = []
        self.lost: Deferred[None] = Deferred()
        self.reason: Failure | None = None

    def lineReceived(self, line: bytes) -> None:
        message = parse(line.rstrip(b"\r").decode("utf-8"))
        self.received.append(message)
        if message.command == "PING":
            self.send("PONG", *message.params)
        for waiter in self._waiters:
            predicate, deferred = waiter
            if predicate(message):
                self._waiters.remove(waiter)
                deferred.callback(message)
                return
        self.inbox.append(message)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.reason = reason
        self.lost.callback(None)

    def send(self, command: str, *params: str) -> None:
        """Send one message; the last parameter may contain spaces."""
        self.sendLine(Message(command, params).to_bytes().rstrip(b"\r\n"))

    def wait_for(
        self, predicate: Predicate, timeout: float = TIMEOUT
    ) -> Deferred[Message]:
        """The first unclaimed message matching *predicate*, now or later."""
        for message in self.inbox:
            if predicate(message):
                self.inbox.remove(message)
                d: Deferred[Message] = Deferred()
                d.callback(message)
                return d
        d = Deferred()
        self._waiters.append((predicate, d))
        return d.addTimeout(timeout, reactor)

    def take(self, predicate: Predicate) -> list[Message]:
        """Remove and return every unclaimed message matching *predicate*."""
        taken = [m for m in self.inbox if predicate(m)]
        self.inbox = [m for m in self.inbox if not predicate(m)]
        return taken

    async def register(self, nick: str) -> None:
        """NICK and USER, then wait for the end of the MOTD (376 or 422)."""
        self.send("NICK", nick)
        self.send("USER", nick.lower(), "0", "*", f"{nick} test")
        await self.wait_for(lambda m: m.command in ("376", "422"))

    async def sync(self, token: str = "sync") -> None:
        """Round trip a PING: everything sent before it has arrived."""
        self.send("PING", token)
        await self.wait_for(lambda m: m.command == "PONG" and token in m.params)


def client_tls(ca_file: Path, hostname: str = "localhost") -> Any:
    """Client TLS options trusting only the CA in *ca_file*."""
    authority = Certificate.loadPEM(ca_file.read_bytes())
    return optionsForClientTLS(hostname, trustRoot=authority)


async def connect_tls(
    port: int, ca_file: Path, hostname: str = "localhost"
) -> LineClient:
    """A TLS connection to 127.0.0.1:*port*, verifying *hostname*."""
    endpoint = wrapClientTLS(
        client_tls(ca_file, hostname), TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    )
    return await connectProtocol(endpoint, LineClient())


async def connect_plain(port: int) -> LineClient:
    """A plaintext connection to 127.0.0.1:*port*."""
    return await connectProtocol(
        TCP4ClientEndpoint(reactor, "127.0.0.1", port), LineClient()
    )


def port_of(port: IListeningPort | None) -> int:
    """The port number a listener got."""
    assert port is not None, "not listening"
    host = port.getHost()
    assert isinstance(host, IPv4Address | IPv6Address), host
    return host.port


class RunningServer:
    """A started `ChatService` and where to reach it."""

    def __init__(self, service: ChatService, cert_dir: Path) -> None:
        self.service = service
        self.ca_file = cert_dir / DEV_CA_FILE
        self.clients: list[LineClient] = []

    def track(self, client: LineClient) -> LineClient:
        """Make `stop` wait for *client*'s connection to close too."""
        self.clients.append(client)
        return client

    async def stop(self) -> None:
        """Stop the service (if running) and wait until every client is gone."""
        if self.service.running:
            await self.service.stopService()
        for client in self.clients:
            await client.lost

    @property
    def tls_port(self) -> int:
        port = self.service.tls_port()
        assert port is not None, "no TLS listener"
        return port

    async def ready(self) -> None:
        """Wait until clients can connect (at once here; see `RunningNetwork`)."""

    def next_tls_port(self) -> int:
        """The TLS port for the next client (`RunningNetwork` alternates)."""
        return self.tls_port

    @property
    def plain_port(self) -> int:
        """The first listener without TLS."""
        for listener in self.service.listeners:
            if not listener.description.startswith("tls:"):
                return port_of(listener.port)
        raise AssertionError("no plaintext listener")

    async def plain_client(self, nick: str | None = None) -> LineClient:
        """A client on the plaintext listener, registered as *nick* when given."""
        client = self.track(await connect_plain(self.plain_port))
        if nick is not None:
            await client.register(nick)
        return client

    async def client(self, nick: str | None = None) -> LineClient:
        """A TLS client, registered as *nick* when given."""
        await self.ready()
        client = self.track(await connect_tls(self.next_tls_port(), self.ca_file))
        if nick is not None:
            await client.register(nick)
        return client


def start_server(
    case: TestCase,
    *listen: str,
    config: ServerConfig | None = None,
    handle_signals: bool = False,
    **settings: Any,
) -> RunningServer:
    """Start the whole service on loopback for *case*, stopped on cleanup.

    Without *listen* there is one TLS listener; the development CA and
    certificate, and the history, go to fresh directories unless *settings*
    say otherwise.
    """
    cert_dir = Path(case.mktemp())
    data_dir = Path(case.mktemp())
    base = config or ServerConfig(server_name="irc.test", network="TestNet")
    config = replace(
        base,
        port=None,
        listen=listen or (TLS_LOOPBACK,),
        cert_dir=settings.pop("cert_dir", cert_dir),
        data_dir=settings.pop("data_dir", data_dir),
        **settings,
    )
    service = makeService(config, reactor=reactor, handle_signals=handle_signals)
    service.startService()
    server = RunningServer(service, config.cert_dir)
    case.addCleanup(lambda: Deferred.fromCoroutine(server.stop()))
    return server


#: The lease of `start_network`'s nodes, in seconds.
NETWORK_LEASE = 3.0


class RunningNetwork(RunningServer):
    """The nodes of one cluster; the k-th client goes to node k % len(nodes).

    It is a `RunningServer` whose `service` is the first node's, so tests
    written for one server run on it unchanged.
    """

    def __init__(self, nodes: list[RunningServer]) -> None:
        super().__init__(nodes[0].service, nodes[0].ca_file.parent)
        self.nodes = nodes
        self._turn = 0

    async def ready(self) -> None:
        """Wait until every node listens and is linked to the cluster."""
        waited = 0.0
        while not all(_linked(node.service) for node in self.nodes):
            if waited > TIMEOUT:
                raise AssertionError("the nodes did not link to the cluster")
            await deferLater(reactor, 0.02, lambda: None)
            waited += 0.02

    def next_tls_port(self) -> int:
        node = self.nodes[self._turn % len(self.nodes)]
        self._turn += 1
        return node.tls_port

    async def plain_client(self, nick: str | None = None) -> LineClient:
        raise AssertionError("the nodes of start_network listen on TLS only")

    async def stop(self) -> None:
        for node in self.nodes:
            await node.stop()
        for client in self.clients:
            await client.lost


def _linked(service: ChatService) -> bool:
    return bool(getattr(service.cluster, "linked", False)) and (
        service.tls_port() is not None
    )


def start_network(
    case: TestCase, nodes: int = 2, database: str | None = None, **settings: Any
) -> RunningNetwork:
    """Start *nodes* services on loopback TLS as one cluster for *case*.

    They share a new Redis (`tests.redis_support`), one PostgreSQL database
    (a new one unless *database* names it: accounts and history are the
    network's) and the development CA; each has its own data directory
    (under ``data_dir`` when given).  *settings* as for `start_server`.
    """
    from tests.redis_support import start_redis
    from tests.services_support import postgres_database

    redis = start_redis(case)
    database = database or postgres_database()
    cert_dir = settings.pop("cert_dir", Path(case.mktemp()))
    data_dir = settings.pop("data_dir", Path(case.mktemp()))
    base = settings.pop("config", None) or ServerConfig(
        server_name="irc.test", network="TestNet"
    )
    running = []
    for number in range(nodes):
        name = f"node{number}"
        config = replace(
            base, cluster=Cluster(redis=redis.url, node_name=name, lease=NETWORK_LEASE)
        )
        running.append(
            start_server(
                case,
                config=config,
                database=database,
                cert_dir=cert_dir,
                data_dir=data_dir / name,
                **settings,
            )
        )
    network = RunningNetwork(running)
    case.addCleanup(lambda: Deferred.fromCoroutine(network.stop()))
    return network


class Serving:
    """A test class mixin: `serve` starts the server its tests talk to.

    Here one server (`start_server`); a subclass in
    `tests.test_cluster_suite` makes it a two-node network instead.
    """

    def serve(self, *listen: str, **settings: Any) -> RunningServer:
        return start_server(cast(TestCase, self), *listen, **settings)
