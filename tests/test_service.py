"""The service: listeners from the config, shutdown, reload, the MOTD."""

from __future__ import annotations

import io
import json
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from twisted.application.service import Application, IServiceMaker
from twisted.internet.address import IPv4Address
from twisted.internet.testing import (
    MemoryReactorClock,
    StringTransport,
    StringTransportWithDisconnection,
)
from twisted.logger import ILogObserver, Logger
from twisted.plugin import getPlugins
from twisted.python.logfile import LogFile
from twisted.trial.unittest import TestCase

from chat.config import ConfigError, ServerConfig
from chat.logging import json_lines_observer, observer_for, twistd_destination
from chat.service import (
    ChatService,
    TrackedFactory,
    TrackedTLSFactory,
    listener_descriptions,
    load_motd,
    makeService,
)
from chat.tls import DEV_CA_FILE


class ThreadlessReactor(MemoryReactorClock):
    """A memory reactor whose callFromThread runs the call at once."""

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kw: Any) -> None:
        f(*args, **kw)


class MotdTests(TestCase):
    def test_none(self) -> None:
        self.assertIsNone(load_motd(None))

    def test_lines(self) -> None:
        path = Path(self.mktemp())
        path.write_text("Welcome  \nto the server\n", encoding="utf-8")
        self.assertEqual(load_motd(path), ["Welcome", "to the server"])

    def test_missing_or_not_utf8(self) -> None:
        path = Path(self.mktemp())
        self.assertRaises(ConfigError, load_motd, path)
        path.write_bytes(b"\xff\xfe caf\xe9")
        error = self.assertRaises(ConfigError, load_motd, path)
        self.assertIn("UTF-8", str(error))


class ListenerTests(TestCase):
    def setUp(self) -> None:
        self.reactor = ThreadlessReactor()
        self.config = ServerConfig(cert_dir=Path(self.mktemp()))

    def make(self, **settings: Any) -> ChatService:
        return makeService(
            replace(self.config, **settings), reactor=self.reactor, storage=False
        )

    def test_descriptions(self) -> None:
        self.assertEqual(listener_descriptions(ServerConfig()), ["tls:tcp:6697"])
        self.assertEqual(
            listener_descriptions(ServerConfig(port=None, listen=("tcp:6667",))),
            ["tcp:6667"],
        )
        self.assertEqual(
            listener_descriptions(ServerConfig(port=8080, listen=("tls:7000",))),
            ["tls:tcp:8080", "tls:7000"],
        )

    def test_port_is_tls_on_all_interfaces(self) -> None:
        service = self.make(port=8080)
        service.startService()
        [(port, factory, _, interface)] = self.reactor.tcpServers
        self.assertEqual((port, interface), (8080, ""))
        self.assertIsInstance(factory, TrackedTLSFactory)
        self.assertIs(factory.wrappedFactory, service.server)
        self.assertTrue((self.config.cert_dir / DEV_CA_FILE).exists())

    def test_listen_plaintext_and_tls_prefix(self) -> None:
        service = self.make(
            port=None, listen=("tcp:6667:interface=127.0.0.1", "tls:7000")
        )
        service.startService()
        plain, tls = self.reactor.tcpServers
        self.assertEqual((plain[0], plain[3]), (6667, "127.0.0.1"))
        self.assertIsInstance(plain[1], TrackedFactory)
        self.assertEqual(tls[0], 7000)
        self.assertIsInstance(tls[1], TrackedTLSFactory)

    def test_plaintext_only_makes_no_certificate(self) -> None:
        service = self.make(port=None, listen=("tcp:6667",))
        self.assertIsNone(service.tls)
        self.assertFalse(self.config.cert_dir.exists())

    def test_stop_stops_listening(self) -> None:
        service = self.make(port=8080)
        service.startService()
        self.assertIsNotNone(service.listeners[0].port)
        self.successResultOf(service.stopService())
        self.assertIsNone(service.listeners[0].port)

    def test_metrics_listener(self) -> None:
        service = self.make(port=None, listen=("tcp:6667",), metrics="tcp:9100")
        service.startService()
        self.assertEqual([s[0] for s in self.reactor.tcpServers], [6667, 9100])
        self.assertEqual(service.listeners, [service.listeners[0]])

    def test_metrics_without_prometheus_client(self) -> None:
        saved = sys.modules.pop("chat.metrics", None)
        sys.modules["chat.metrics"] = None  # type: ignore[assignment]

        def restore() -> None:
            del sys.modules["chat.metrics"]
            if saved is not None:
                sys.modules["chat.metrics"] = saved

        self.addCleanup(restore)
        error = self.assertRaises(ConfigError, self.make, metrics="tcp:9100")
        self.assertIn("prometheus-client", str(error))

    def test_nothing_to_listen_on(self) -> None:
        self.assertRaises(ConfigError, self.make, port=None, listen=())

    def test_cert_without_key(self) -> None:
        error = self.assertRaises(ConfigError, self.make, cert=Path("c.pem"))
        self.assertIn("--key", str(error))


class ShutdownTests(TestCase):
    def setUp(self) -> None:
        self.reactor = ThreadlessReactor()
        config = ServerConfig(port=None, listen=("tcp:6667",), shutdown_timeout=5.0)
        self.service = makeService(config, reactor=self.reactor, storage=False)
        self.service.startService()
        self.factory = self.service.factories[0]

    def connect(self, transport: StringTransport) -> StringTransport:
        assert isinstance(self.factory, TrackedFactory)
        protocol = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1234))
        transport.protocol = protocol  # type: ignore[attr-defined]
        protocol.makeConnection(transport)
        return transport

    def test_error_to_everyone_then_done_when_closed(self) -> None:
        transport = self.connect(StringTransportWithDisconnection())
        stopped = self.service.stopService()
        self.assertIn(b"ERROR :Closing Link", transport.value())
        self.assertIn(b"Server shutting down", transport.value())
        self.assertIsNone(self.successResultOf(stopped))
        self.assertFalse(self.factory.protocols)

    def test_bounded_wait_then_abort(self) -> None:
        transport = self.connect(StringTransport())
        stopped = self.service.stopService()
        self.assertIn(b"ERROR", transport.value())
        self.assertNoResult(stopped)
        self.reactor.advance(4.9)
        self.assertNoResult(stopped)
        self.reactor.advance(0.2)
        self.assertIsNone(self.successResultOf(stopped))
        self.assertTrue(transport.disconnected)


class ReloadTests(TestCase):
    def setUp(self) -> None:
        self.reactor = ThreadlessReactor()
        self.motd = Path(self.mktemp())
        self.motd.write_text("old motd\n")
        self.config = ServerConfig(port=None, listen=("tcp:6667",), motd_file=self.motd)
        self.next: Callable[[], ServerConfig] = lambda: self.config
        self.service = makeService(
            self.config,
            reload_config=lambda: self.next(),
            reactor=self.reactor,
            handle_signals=True,
            storage=False,
        )

    def test_reload_applies_config_and_motd(self) -> None:
        new = replace(self.config, network="NewNet", operators={"a": "scrypt$x"})
        self.next = lambda: new
        self.motd.write_text("new motd\n")
        self.assertTrue(self.service.reload())
        self.assertIs(self.service.server.config, new)
        self.assertEqual(self.service.server.motd, ["new motd"])

    def test_a_new_database_waits_for_a_restart(self) -> None:
        new = replace(self.config, database="postgresql://chat@127.0.0.1/chat")
        self.next = lambda: new
        self.assertTrue(self.service.reload())
        self.assertEqual(self.service.server.config.database, "sqlite")

    def test_bad_config_keeps_the_old(self) -> None:
        def broken() -> ServerConfig:
            raise ConfigError("chat.toml: port must be a port number")

        self.next = broken
        self.motd.write_text("new motd\n")
        self.assertFalse(self.service.reload())
        self.assertIs(self.service.server.config, self.config)
        self.assertEqual(self.service.server.motd, ["old motd"])

    def test_bad_motd_keeps_the_old(self) -> None:
        self.motd.write_bytes(b"\xff")
        self.assertFalse(self.service.reload())
        self.assertEqual(self.service.server.motd, ["old motd"])

    def test_sighup_reloads_while_running(self) -> None:
        previous = signal.getsignal(signal.SIGHUP)
        self.service.startService()
        self.motd.write_text("hup\n")
        handler = signal.getsignal(signal.SIGHUP)
        assert callable(handler)
        handler(signal.SIGHUP, None)
        self.assertEqual(self.service.server.motd, ["hup"])
        self.service.stopService()
        self.assertEqual(signal.getsignal(signal.SIGHUP), previous)


class LogObserverTests(TestCase):
    def test_text_keeps_twistd_default(self) -> None:
        self.assertIsNone(observer_for("text", {"logfile": None, "nodaemon": True}))

    def test_json_only_under_twistd(self) -> None:
        self.assertIsNone(observer_for("json", None))
        self.assertIsNone(observer_for("json", {"log-file": "-"}))  # twist
        self.assertIsNone(observer_for("json", {"logfile": None, "syslog": True}))

    def test_json_lines(self) -> None:
        out = io.StringIO()
        observer = json_lines_observer(out)
        observer({"log_format": "one {x}", "x": 1, "log_time": 0.0})
        observer({"log_format": "two", "log_time": 1.0})
        lines = out.getvalue().splitlines()
        self.assertEqual(
            [json.loads(line)["message"] for line in lines], ["one 1", "two"]
        )

    def test_json_record_is_clean(self) -> None:
        out = io.StringIO()
        log = Logger(namespace="chat.events", observer=json_lines_observer(out))
        log.warn(
            "Refused {address}: {why}",
            event="refused",
            address="192.0.2.1",
            why=Path("x"),
        )
        try:
            raise ZeroDivisionError("division by zero")
        except ZeroDivisionError:
            log.failure("It broke")
        refused, broke = (json.loads(line) for line in out.getvalue().splitlines())
        self.assertEqual(
            {k: v for k, v in refused.items() if k != "time"},
            {
                "level": "warn",
                "event": "refused",
                "system": "chat.events",
                "message": "Refused 192.0.2.1: x",
                "address": "192.0.2.1",
                "why": "x",
            },
        )
        self.assertRegex(refused["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual((broke["event"], broke["level"]), ("log", "critical"))
        self.assertIn("ZeroDivisionError", broke["traceback"])
        for record in (refused, broke):
            self.assertFalse([k for k in record if k.startswith("log_")], record)

    def test_destination_follows_twistd(self) -> None:
        self.assertIs(
            twistd_destination({"logfile": "-", "nodaemon": True}), sys.stdout
        )
        self.assertIs(
            twistd_destination({"logfile": None, "nodaemon": True}), sys.stdout
        )
        path = Path(self.mktemp()).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        previous = signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        self.addCleanup(signal.signal, signal.SIGUSR1, previous)
        destination = twistd_destination({"logfile": str(path), "nodaemon": False})
        self.addCleanup(destination.close)
        self.assertIsInstance(destination, LogFile)
        self.assertEqual(Path(destination.path), path)  # type: ignore[attr-defined]
        self.assertTrue(callable(signal.getsignal(signal.SIGUSR1)))

    def test_service_gives_twistd_the_observer(self) -> None:
        config = ServerConfig(port=None, listen=("tcp:6667",), log_format="json")
        service = makeService(
            config,
            reactor=ThreadlessReactor(),
            twistd_options={"logfile": "-", "nodaemon": True},
            storage=False,
        )
        application = Application("chat")
        service.setServiceParent(application)
        self.assertIs(application.getComponent(ILogObserver), service.log_observer)
        self.assertIsNotNone(service.log_observer)


class PluginTests(TestCase):
    def plugin(self) -> Any:
        from twisted import plugins

        found = {p.tapname: p for p in getPlugins(IServiceMaker, plugins)}
        self.assertIn("chat", found)
        return found["chat"]

    def test_found_by_twistd(self) -> None:
        plugin = self.plugin()
        options = plugin.options()
        # Port 0: the plugin tries the port before building the service.
        options.parseOptions(["--port", "0", "--cert-dir", self.mktemp()])
        service = plugin.makeService(options)
        self.assertIsInstance(service, ChatService)
        self.assertEqual(
            [listener.description for listener in service.listeners], ["tls:tcp:0"]
        )

    def test_bad_certificate_exits_with_a_message(self) -> None:
        options = self.plugin().options()
        options.parseOptions(["--cert", "/nonexistent.pem", "--key", "/nokey.pem"])
        error = self.assertRaises(SystemExit, self.plugin().makeService, options)
        self.assertIn("chat: cannot read /nonexistent.pem", str(error))
