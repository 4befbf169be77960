"""makeService(): the listeners, the chat server and its stores, wired together.

`ChatService` is a `MultiService` with one `Listener` child per endpoint.  It
opens the stores (accounts and channels, history) that the ``database``
setting names (`chat.storage.factory`: SQLite in the data directory by
default, or PostgreSQL) on start.  On stop it closes the listeners, sends ``ERROR`` to
every client, waits (at most ``shutdown_timeout`` seconds on the reactor
clock) for the goodbyes to be flushed, then writes what the stores hold
pending and closes them, bounded the same way.  `ChatService.reload`
(``SIGHUP``) swaps the configuration, the MOTD and the TLS certificate
without touching open connections.
"""

from __future__ import annotations

import dataclasses
import shlex
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, cast
from typing import Protocol as Interface

from twisted.application.service import MultiService, Service
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IListeningPort,
    IProtocolFactory,
    IReactorFromThreads,
    IReactorSocket,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import Protocol
from twisted.logger import ILogObserver, Logger
from twisted.python.components import Componentized
from twisted.python.failure import Failure

from chat.accounts import use_store
from chat.config import SQLITE, ConfigError, ServerConfig
from chat.history import HistoryConfig
from chat.logging import observer_for
from chat.preflight import check_directory, check_listeners, tcp_address
from chat.server import ChatServer
from chat.storage import StoreUnavailableError
from chat.storage.factory import describe, open_stores
from chat.tls import (
    DevCertificate,
    ReloadableServerTLS,
    TLSServerFactory,
    ensure_dev_certificate,
    server_options,
)
from chat.traffic import Traffic
from chat.transport import DirectFactory, TLSFactory
from chat.workers import ReusePortEndpoint, SupervisorWatch, WorkerSupervisor

if TYPE_CHECKING:
    from chat.web.site import WebSite

#: Prefix of a ``--listen`` endpoint that gets the server's TLS.
TLS_PREFIX = "tls:"
#: Prefix of a ``--listen`` endpoint that serves the web client (`chat.web`).
WEB_PREFIX = "web:"
SHUTDOWN_REASON = "Server shutting down"
#: Seconds before loading the registered channels again while the database
#: is away, doubling up to `LOAD_RETRY_MAX`.
LOAD_RETRY = 1.0
LOAD_RETRY_MAX = 32.0

log = Logger()


def load_motd(path: Path | None) -> list[str] | None:
    """The lines of the MOTD file, or None when there is none."""
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read the MOTD {path}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"the MOTD {path} is not UTF-8: {error}") from error
    return [line.rstrip() for line in text.splitlines()]


def address_text(address: IAddress) -> str:
    """``host:port`` for IP addresses, the repr for anything else."""
    if isinstance(address, IPv4Address | IPv6Address):
        host = f"[{address.host}]" if ":" in address.host else address.host
        return f"{host}:{address.port}"
    return str(address)


class _Tracking:
    """A wrapping factory that can tell when its last connection is gone."""

    protocols: dict[Protocol, int]

    def when_idle(self) -> Deferred[None]:
        """Fires once no connection of this factory is left."""
        if not self.protocols:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self.__dict__.setdefault("_idle_waiters", []).append(waiter)
        return waiter

    def unregisterProtocol(self, p: Protocol) -> None:
        super().unregisterProtocol(p)  # type: ignore[misc]
        if not self.protocols:
            waiters = self.__dict__.pop("_idle_waiters", [])
            for waiter in waiters:
                waiter.callback(None)

    def abort_all(self) -> None:
        """Drop every connection left, without waiting for its buffers."""
        for p in list(self.protocols):
            if p.transport is not None:
                p.transport.abortConnection()  # type: ignore[attr-defined]


class Drainable(Interface):
    """Connections the shutdown waits for, then drops."""

    def when_idle(self) -> Deferred[None]: ...

    def abort_all(self) -> None: ...


class TrackedFactory(_Tracking, DirectFactory):
    """A plaintext listener's factory."""


class TrackedTLSFactory(_Tracking, TLSFactory):
    """A TLS listener's factory."""


class ListenError(Exception):
    """A listener could not open its port; the message says which and why."""


class Listener(Service):
    """Listen on one endpoint while the service runs."""

    def __init__(
        self,
        description: str,
        endpoint: IStreamServerEndpoint,
        factory: IProtocolFactory,
    ) -> None:
        self.description = description
        self.endpoint = endpoint
        self.factory = factory
        self.port: IListeningPort | None = None
        self._pending: Deferred[IListeningPort] | None = None

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._listen()

    def startService(self) -> None:
        super().startService()
        if self._pending is None:
            self._listen()

    def _listen(self) -> None:
        failures: list[Failure] = []
        self._pending = self.endpoint.listen(self.factory)
        self._pending.addCallback(self._listening)
        self._pending.addErrback(failures.append)
        if failures:
            self._pending = None
            error = failures[0].value
            if isinstance(error, CannotListenError):
                # Short: a daemonizing twistd shows only 100 bytes of it.
                reason = getattr(error.socketError, "strerror", None) or error
                where = f"{error.interface or '*'}:{error.port}"
                raise ListenError(f"cannot listen on {where}: {reason}")
            failures[0].raiseException()

    def _listening(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        log.info(
            "Listening on {description} ({address})",
            description=self.description,
            address=address_text(port.getHost()),
        )
        return port

    def stopService(self) -> Deferred[None]:
        super().stopService()
        port, self.port, self._pending = self.port, None, None
        if port is None:
            return succeed(None)
        stopped: Deferred[None] | None = port.stopListening()
        return stopped or succeed(None)


class ChatService(MultiService):
    """The chat server and its listeners; see the module docstring."""

    def __init__(
        self,
        config: ServerConfig,
        server: ChatServer,
        reactor: IReactorTime,
        reload_config: Callable[[], ServerConfig],
        tls: ReloadableServerTLS | None = None,
        dev_certificate: DevCertificate | None = None,
        handle_signals: bool = False,
    ) -> None:
        super().__init__()
        self.config = config
        self.server = server
        self.reactor = reactor
        self.tls = tls
        self.dev_certificate = dev_certificate
        self.factories: list[Drainable] = []
        #: Every TLS listener's factory, IRC and web (for handshake failures).
        self.tls_factories: list[TLSFactory | TLSServerFactory] = []
        self.listeners: list[Listener] = []
        self.traffic = Traffic()
        self.metrics: Listener | None = None
        #: The site of every web listener, made with the first one.
        self.web: WebSite | None = None
        self._reload_config = reload_config
        self._handle_signals = handle_signals
        self._previous_sighup: Any = None
        #: Where accounts, channels and history go; None keeps them in memory.
        self.data_dir: Path | None = None
        #: Fires once the stores are open and registered channels are loaded.
        self.storage_ready: Deferred[None] = succeed(None)
        #: The next attempt to load the registered channels, if one waits.
        self._load_call: IDelayedCall | None = None
        #: Given to twistd's application as its log observer (JSON logs).
        self.log_observer: ILogObserver | None = None
        #: In twistd's foreground: a port that cannot be opened (one the
        #: start-up check could not foresee) exits with one line.
        self.exit_on_listen_error = False
        #: The link to the other nodes in cluster mode (`chat.cluster`).
        self.cluster: Service | None = None

    def setServiceParent(self, parent: Any) -> None:
        super().setServiceParent(parent)
        if self.log_observer is not None and isinstance(parent, Componentized):
            parent.setComponent(ILogObserver, self.log_observer)

    def add_listener(self, description: str) -> Listener:
        """Listen on endpoint *description* (``tls:`` wraps it in our TLS,
        ``web:`` serves the web client instead of IRC)."""
        web = description.startswith(WEB_PREFIX)
        inner = description[len(WEB_PREFIX) :] if web else description
        tls = inner.startswith(TLS_PREFIX)
        if tls:
            if self.tls is None:
                raise ConfigError("internal error: TLS listener without TLS")
            inner = inner[len(TLS_PREFIX) :]
            if inner[:1].isdigit():
                inner = f"tcp:{inner}"
        endpoint = self._endpoint(inner)
        factory: IProtocolFactory
        if web:
            from chat.web.connections import ConnectionCap

            site: IProtocolFactory = self.web_site()
            if self.tls is not None and tls:
                site = TLSServerFactory(self.tls, site)
                self.tls_factories.append(site)
            factory = ConnectionCap(site, self.server)
        elif self.tls is not None and tls:
            factory = TrackedTLSFactory(
                self.tls, self.server, self.traffic, self.reactor
            )
            self.factories.append(factory)
            self.tls_factories.append(factory)
        else:
            factory = TrackedFactory(self.server, self.traffic, self.reactor)
            self.factories.append(factory)
        listener = Listener(description, endpoint, factory)
        listener.setServiceParent(self)
        self.listeners.append(listener)
        return listener

    def _endpoint(self, description: str) -> IStreamServerEndpoint:
        """The endpoint of *description*; in a ``--workers`` process one that
        shares its port with the other workers."""
        if self.config.worker is None:
            return serverFromString(self.reactor, description)
        address = tcp_address(description)
        if address is None:
            raise ConfigError(
                f"--workers needs TCP listeners on fixed ports, not {description!r}"
            )
        return ReusePortEndpoint(cast(IReactorSocket, self.reactor), *address)

    def web_site(self) -> WebSite:
        """The site of the web listeners; the shutdown waits for its WebSockets."""
        if self.web is None:
            from chat.web.site import web_site

            self.web = web_site(self.server, self.traffic)
            self.factories.append(self.web.websocket)
        return self.web

    def add_metrics(self, description: str) -> Listener:
        """Serve the Prometheus metrics over HTTP on endpoint *description*."""
        try:
            from chat.metrics import ServerCollector, metrics_site
        except ImportError as error:
            raise ConfigError(
                f"--metrics needs the prometheus-client package ({error})"
            ) from error
        collector = ServerCollector(self.server, self.traffic, self.handshake_failures)
        endpoint = serverFromString(self.reactor, description)
        self.metrics = Listener(
            f"metrics {description}", endpoint, metrics_site(collector)
        )
        self.metrics.setServiceParent(self)
        return self.metrics

    def handshake_failures(self) -> int:
        """TLS connections closed before their handshake completed, so far."""
        return sum(f.handshake_failures for f in self.tls_factories)

    def tls_port(self) -> int | None:
        """The port number of the first TLS IRC listener, once listening."""
        for listener in self.listeners:
            if listener.description.startswith(WEB_PREFIX):
                continue
            if isinstance(listener.factory, TLSFactory) and listener.port:
                return int(getattr(listener.port.getHost(), "port", 0))
        return None

    def web_port(self, secure: bool = True) -> int | None:
        """The port number of the first web listener with (or without) TLS."""
        for listener in self.listeners:
            if not listener.description.startswith(WEB_PREFIX) or not listener.port:
                continue
            if needs_tls(listener.description) == secure:
                return int(getattr(listener.port.getHost(), "port", 0))
        return None

    # -- start and stop -------------------------------------------------

    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()
        except ListenError as error:
            if not self.exit_on_listen_error:
                raise  # a daemonizing twistd reports it to the terminal
            raise SystemExit(f"chat: {error}") from None

    def startService(self) -> None:
        if self.data_dir is not None:
            self._open_storage(self.data_dir)
        if self.cluster is not None:
            self.cluster.startService()
        super().startService()
        if self._handle_signals:
            self._previous_sighup = signal.signal(signal.SIGHUP, self._on_sighup)
        if self.dev_certificate is not None:
            self._warn_dev_certificate(self.dev_certificate)
        self._announce_web()

    def _announce_web(self) -> None:
        """Say where to open the web client."""
        secure, plain = self.web_port(secure=True), self.web_port(secure=False)
        if secure is not None:
            log.info("Web client: https://localhost:{port}/", port=secure)
        if plain is not None:
            log.info(
                "Web client (development, plain HTTP): http://localhost:{port}/",
                port=plain,
            )

    def _warn_dev_certificate(self, dev: DevCertificate) -> None:
        made = "Created" if dev.created else "Using"
        log.warn(
            "*** DEVELOPMENT CERTIFICATE *** {made} {cert}, signed by the "
            "development CA {ca} and valid only for localhost, 127.0.0.1 and ::1. "
            "Do not use it in production: give --cert and --key.",
            made=made,
            cert=str(dev.cert),
            ca=str(dev.ca),
        )
        log.warn(
            "Connect with: {command}", command=client_command(self.tls_port(), dev.ca)
        )

    def stopService(self) -> Deferred[None]:
        if self._load_call is not None and self._load_call.active():
            self._load_call.cancel()
        self._load_call = None
        if self._handle_signals:
            signal.signal(signal.SIGHUP, self._previous_sighup or signal.SIG_DFL)
        listeners_stopped = super().stopService()
        stopped = listeners_stopped or succeed(None)
        stopped.addCallback(lambda _: self._disconnect_clients())
        if self.cluster is not None:
            # After the clients: the other nodes see each one quit.
            cluster = self.cluster
            stopped.addCallback(lambda _: cluster.stopService())
        stopped.addCallback(lambda _: self._close_storage())
        stopped.addCallback(lambda _: self.server.events.stop())
        return stopped

    def _disconnect_clients(self) -> Deferred[None]:
        """Say ERROR to everyone and wait a bounded time for the bytes to leave."""
        clients = len(self.server.connections)
        log.info("Shutting down: disconnecting {clients} clients", clients=clients)
        self.server.shutdown(SHUTDOWN_REASON)
        idle = gatherResults(
            [f.when_idle() for f in self.factories], consumeErrors=True
        )
        idle.addTimeout(self.config.shutdown_timeout, self.reactor)

        def give_up(failure: Failure) -> None:
            log.warn("Shutdown timeout: dropping connections that did not close")
            for factory in self.factories:
                factory.abort_all()

        return idle.addCallbacks(lambda _: None, give_up)

    def _open_storage(self, data_dir: Path) -> None:
        """Give the server the stores of ``config.database``."""
        threads = cast(IReactorFromThreads, self.reactor)
        limits = self.config.limits
        retention = HistoryConfig(
            max_age=limits.history_days * 24 * 3600,
            max_per_target=limits.history_per_target,
        )
        database = self.config.database
        stores = open_stores(database, data_dir, threads, retention)
        log.info("Storage: {where}", where=describe(database, data_dir))
        self.server.history = stores.history
        # Channels created before the registered ones are read are restored
        # as soon as they are (ChanServ.load).
        self.storage_ready = Deferred()
        self._loaded(use_store(self.server, stores.accounts), LOAD_RETRY)

    def _loaded(self, loading: Deferred[None], delay: float) -> None:
        """Fire `storage_ready` once *loading* succeeds; while the database
        is away, load again after *delay* seconds, doubling."""

        def retry(failure: Failure) -> None:
            if not failure.check(StoreUnavailableError):
                log.failure("Loading registered channels failed", failure)
                self.storage_ready.callback(None)
                return
            log.warn(
                "Registered channels not loaded, trying again in {delay} s: {error}",
                delay=delay,
                error=str(failure.value),
            )
            self._load_call = self.reactor.callLater(delay, again)

        def again() -> None:
            self._load_call = None
            self._loaded(self.server.services.load(), min(2 * delay, LOAD_RETRY_MAX))

        loading.addCallbacks(self.storage_ready.callback, retry)

    def _close_storage(self) -> Deferred[None]:
        """Write what is pending and close the stores, in bounded time."""
        closed = gatherResults(
            [self.server.history.close(), self.server.accounts.store.close()],
            consumeErrors=True,
        )
        closed.addTimeout(self.config.shutdown_timeout, self.reactor)

        def give_up(failure: Failure) -> None:
            log.failure("Closing the stores failed", failure)

        return closed.addCallbacks(lambda _: None, give_up)

    # -- reload ---------------------------------------------------------

    def _on_sighup(self, signum: int, frame: FrameType | None) -> None:
        cast(IReactorFromThreads, self.reactor).callFromThread(self.reload)

    def reload(self) -> bool:
        """Load the configuration, MOTD and certificate again; True if applied.

        Anything wrong leaves the running configuration in place.
        """
        try:
            config = self._reload_config()
            motd = load_motd(config.motd_file)
            tls = None
            if self.tls is not None:
                tls, self.dev_certificate = load_tls(config)
        except ValueError as error:  # ConfigError, TLSConfigError
            log.error(
                "Reload rejected, keeping the running configuration: {error}",
                error=str(error),
            )
            return False
        if config.listeners_differ(self.config):
            log.warn("Changes to --port, --listen, --metrics and --web need a restart")
        if config.database != self.config.database:
            log.warn("A change of database needs a restart: keeping the running one")
            config = dataclasses.replace(config, database=self.config.database)
        self.config = config
        self.server.config = config
        self.server.motd = motd
        if tls is not None and self.tls is not None:
            self.tls.replace(tls)
        log.info("Configuration reloaded")
        return True


def _shown(path: Path) -> str:
    """*path* relative to the working directory when inside it, shell-quoted."""
    absolute = path.absolute()
    try:
        shown = absolute.relative_to(Path.cwd())
    except ValueError:
        shown = absolute
    return shlex.quote(str(shown))


def client_command(port: int | None, ca: Path) -> str:
    """The command line of our client connecting to this server through *ca*,
    with the Python the server runs on (the venv's, in a checkout)."""
    python = _shown(Path(sys.executable))
    return f"{python} -m chat.client --host localhost --port {port} --ca {_shown(ca)}"


def load_tls(config: ServerConfig) -> tuple[Any, DevCertificate | None]:
    """TLS server options from *config*, making a development certificate
    when none is configured; raises `ConfigError` or `TLSConfigError`."""
    if (config.cert is None) != (config.key is None):
        raise ConfigError("give both --cert and --key, or neither")
    dev = None
    if config.cert is None or config.key is None:
        dev = ensure_dev_certificate(config.cert_dir)
        cert, key = dev.cert, dev.key
    else:
        cert, key = config.cert, config.key
    return server_options(cert, key), dev


def listener_descriptions(config: ServerConfig) -> list[str]:
    """Every endpoint to listen on: ``--port`` first, then ``--listen``."""
    descriptions = [] if config.port is None else [f"{TLS_PREFIX}tcp:{config.port}"]
    descriptions += list(config.listen)
    if config.web.port is not None:
        descriptions.append(f"{WEB_PREFIX}{TLS_PREFIX}tcp:{config.web.port}")
    if config.web.dev_http is not None:
        loopback = f"tcp:{config.web.dev_http}:interface=127.0.0.1"
        descriptions.append(f"{WEB_PREFIX}{loopback}")
    return descriptions


def needs_tls(description: str) -> bool:
    """Whether the listener *description* serves TLS."""
    if description.startswith(WEB_PREFIX):
        description = description[len(WEB_PREFIX) :]
    return description.startswith(TLS_PREFIX)


def makeService(
    config: ServerConfig,
    reload_config: Callable[[], ServerConfig] | None = None,
    reactor: IReactorTime | None = None,
    handle_signals: bool = False,
    twistd_options: Mapping[str, Any] | None = None,
    storage: bool = True,
    check_ports: bool = False,
) -> ChatService:
    """The whole server as a service; raises `ConfigError` or `TLSConfigError`.

    *reload_config* reads the configuration again on reload (default: keep
    *config*); *handle_signals* makes ``SIGHUP`` reload; *twistd_options*
    say where twistd logs, for ``--log-format json``; without *storage*
    accounts and history stay in memory; *check_ports* tries each TCP port
    first (`chat.preflight`), so that one in use is a one-line error.
    """
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = cast(IReactorTime, default_reactor)
    descriptions = listener_descriptions(config)
    if not descriptions:
        raise ConfigError("nothing to listen on: give --port or --listen")
    if config.worker is not None and not config.cluster.redis:
        raise ConfigError("--worker needs --cluster: workers are cluster nodes")
    if check_ports and config.worker is None:
        # A worker shares its ports with the others; its supervisor checked.
        check_listeners(descriptions)
    if storage and config.database == SQLITE:
        # twistd changes to --rundir before the stores open.
        rundir = Path((twistd_options or {}).get("rundir") or ".")
        check_directory(rundir / config.data_dir, "data directory")
    server = ChatServer(config, reactor, load_motd(config.motd_file))
    tls = dev = None
    if any(needs_tls(d) for d in descriptions):
        options, dev = load_tls(config)
        tls = ReloadableServerTLS(options)
    elif config.cert is not None or config.key is not None:
        raise ConfigError(
            "--cert/--key are set but no listener uses TLS: give --port or "
            "--listen tls:..., or leave them out"
        )
    service = ChatService(
        config,
        server,
        reactor,
        reload_config or (lambda: config),
        tls,
        dev,
        handle_signals,
    )
    for description in descriptions:
        service.add_listener(description)
    if config.metrics is not None:
        service.add_metrics(config.metrics)
    service.log_observer = observer_for(config.log_format, twistd_options)
    service.exit_on_listen_error = bool(
        twistd_options and twistd_options.get("nodaemon")
    )
    if storage:
        service.data_dir = config.data_dir
    if config.cluster.redis:
        service.cluster = cluster_node(server, config)
    if config.worker is not None:
        SupervisorWatch(reactor).setServiceParent(service)
    return service


def cluster_node(server: ChatServer, config: ServerConfig) -> Service:
    """The link of *server* to the other nodes of its cluster."""
    from chat.cluster import parse_redis_url
    from chat.cluster.node import ClusterNode

    address = parse_redis_url(config.cluster.redis)
    name = config.cluster.node_name or config.server_name
    if config.worker is not None:
        name = f"{name}-{config.worker}"
    return ClusterNode(
        server, address, name, config.cluster.lease, config.cluster.stream_length
    )


def make_supervisor(
    config: ServerConfig, arguments: Sequence[str], reactor: Any = None
) -> Service:
    """``--workers N``: the service that runs the N worker processes."""
    if not config.cluster.redis:
        raise ConfigError(
            "--workers needs --cluster: workers share users and channels through Redis"
        )
    from chat.cluster import parse_redis_url

    parse_redis_url(config.cluster.redis)  # a bad URL: one error, not N workers
    descriptions = listener_descriptions(config)
    check_listeners(descriptions)
    if any(d.startswith(TLS_PREFIX) for d in descriptions):
        load_tls(config)  # makes the development certificate once, here
    if reactor is None:
        from twisted.internet import reactor
    return WorkerSupervisor(reactor, config.workers, arguments)
