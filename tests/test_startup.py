"""Start-up: a real ``twistd chat`` says what is wrong in one line.

Each test runs the venv's ``twistd`` (the installed server, as a user runs
it) in a fresh directory and reads what it printed.
"""

from __future__ import annotations

import configparser
import os
import re
import socket
import sys
from pathlib import Path

from twisted.internet.defer import fail
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SkipTest, TestCase

from chat.config import ConfigError, ServerConfig
from chat.preflight import check_directory, check_listeners, tcp_address
from chat.server import ChatServer
from chat.service import Listener, ListenError, client_command, makeService
from chat.version import __version__

ROOT = Path(__file__).resolve().parent.parent
TWISTD = Path(sys.executable).parent / "twistd"


def setup_cfg_version() -> str:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg", encoding="utf-8")
    return parser.get("metadata", "version")


class Twistd:
    """Runs ``twistd`` in a directory of its own."""

    def __init__(self, case: TestCase) -> None:
        if not TWISTD.exists():
            if os.environ.get("CI"):
                raise AssertionError(f"{TWISTD} is missing: install the project")
            raise SkipTest(f"{TWISTD} is missing: run make test")
        self.dir = Path(case.mktemp()).resolve()
        self.dir.mkdir(parents=True)

    async def run(self, *args: str) -> tuple[int, list[str]]:
        """The exit code and the non-empty lines of stdout and stderr."""
        out, err, code = await getProcessOutputAndValue(
            str(TWISTD), args, env=dict(os.environ), path=str(self.dir)
        )
        text = (out + err).decode("utf-8", "replace")
        return code, [line for line in text.splitlines() if line.strip()]


def held_port() -> socket.socket:
    """A loopback socket listening on a free port, as another server would."""
    held = socket.socket()
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.bind(("127.0.0.1", 0))
    held.listen()
    return held


class StartupErrorTests(TestCase):
    def assertOneLine(self, result: tuple[int, list[str]], *expected: str) -> str:
        code, lines = result
        self.assertNotEqual(code, 0, lines)
        self.assertEqual(len(lines), 1, lines)
        self.assertNotIn("Traceback", lines[0])
        for text in expected:
            self.assertIn(text, lines[0])
        return lines[0]

    async def test_port_in_use_in_the_foreground(self) -> None:
        twistd = Twistd(self)
        with held_port() as held:
            port = held.getsockname()[1]
            result = await twistd.run(
                "-n", "chat", f"--listen=tls:tcp:{port}:interface=127.0.0.1"
            )
        self.assertOneLine(result, "chat: cannot listen on", str(port), "in use")

    async def test_port_in_use_as_a_daemon(self) -> None:
        twistd = Twistd(self)
        with held_port() as held:
            port = held.getsockname()[1]
            result = await twistd.run(
                f"--pidfile={twistd.dir / 'chat.pid'}",
                f"--logfile={twistd.dir / 'chat.log'}",
                "chat",
                f"--listen=tcp:{port}:interface=127.0.0.1",
            )
        line = self.assertOneLine(result, "Address already in use")
        self.assertNotIn("An error has occurred", line)
        self.assertFalse((twistd.dir / "chat.pid").exists())

    async def test_same_port_twice(self) -> None:
        twistd = Twistd(self)
        with held_port() as held:
            port = held.getsockname()[1]
        listen = f"--listen=tcp:{port}:interface=127.0.0.1"
        result = await twistd.run("-n", "chat", listen, listen)
        self.assertOneLine(
            result, f"chat: cannot listen on tcp:{port}", "uses that port"
        )

    async def test_data_directory_that_cannot_be_made(self) -> None:
        twistd = Twistd(self)
        (twistd.dir / "file").write_text("not a directory")
        result = await twistd.run(
            "-n", "chat", "--data-dir=file/data", "--listen=tcp:0:interface=127.0.0.1"
        )
        self.assertOneLine(result, "chat: cannot create the data directory file/data")

    async def test_certificate_directory_that_cannot_be_made(self) -> None:
        twistd = Twistd(self)
        (twistd.dir / "file").write_text("not a directory")
        result = await twistd.run(
            "-n", "chat", "--cert-dir=file/certs", "--listen=tls:tcp:0"
        )
        self.assertOneLine(result, "chat: cannot write the development certificate")

    async def test_bad_config_file_without_the_usage(self) -> None:
        twistd = Twistd(self)
        (twistd.dir / "chat.toml").write_text('port = "six"\n')
        result = await twistd.run("-n", "chat", "--config=chat.toml")
        line = self.assertOneLine(result, "chat: chat.toml: port must be")
        self.assertNotIn("Usage", line)

    async def test_config_file_that_is_not_toml(self) -> None:
        twistd = Twistd(self)
        (twistd.dir / "chat.toml").write_text("[limits\n")
        result = await twistd.run("-n", "chat", "--config=chat.toml")
        self.assertOneLine(result, "chat: chat.toml is not valid TOML")

    async def test_certificate_without_a_tls_listener(self) -> None:
        twistd = Twistd(self)
        for given in (["--cert=missing.pem", "--key=missing-key.pem"], ["--key=k"]):
            result = await twistd.run(
                "-n", "chat", "--listen=tcp:0:interface=127.0.0.1", *given
            )
            self.assertOneLine(result, "chat: --cert/--key are set but no listener")

    async def test_version(self) -> None:
        twistd = Twistd(self)
        code, lines = await twistd.run("chat", "--version")
        self.assertEqual((code, lines), (0, [f"chat-server {setup_cfg_version()}"]))
        code, lines = await twistd.run("chat", "--help")
        self.assertEqual(code, 0)
        self.assertIn(f"chat-server {setup_cfg_version()}", "\n".join(lines))


class PreflightTests(TestCase):
    def test_tcp_addresses(self) -> None:
        self.assertEqual(tcp_address("tcp:6697"), ("", 6697))
        self.assertEqual(
            tcp_address("tcp:6667:interface=127.0.0.1"), ("127.0.0.1", 6667)
        )
        self.assertEqual(tcp_address("tcp:6667:127.0.0.2"), ("127.0.0.2", 6667))
        self.assertEqual(tcp_address(r"tcp6:6697:interface=\:\:1"), ("::1", 6697))
        self.assertEqual(tcp_address("tcp6:port=7000"), ("::", 7000))
        self.assertIsNone(tcp_address("tcp:0:interface=127.0.0.1"))
        self.assertIsNone(tcp_address("unix:/tmp/chat.sock"))
        self.assertIsNone(tcp_address("tcp:http"))

    def test_port_in_use_is_named(self) -> None:
        with held_port() as held:
            port = held.getsockname()[1]
            description = f"tls:{port}:interface=127.0.0.1"
            error = self.assertRaises(ConfigError, check_listeners, [description])
        self.assertIn(f"cannot listen on {description}: ", str(error))
        self.assertIn("another server", str(error))
        check_listeners([description])  # free again

    def test_directories(self) -> None:
        base = Path(self.mktemp())
        base.mkdir()
        check_directory(base / "new" / "deeper", "data directory")
        check_directory(base, "data directory")
        (base / "file").write_text("")
        for path in (base / "file", base / "file" / "data"):
            error = self.assertRaises(
                ConfigError, check_directory, path, "data directory"
            )
            self.assertIn(f"cannot create the data directory {path}", str(error))

    def test_listener_error_is_short(self) -> None:
        class Refusing:
            def listen(self, factory: IProtocolFactory) -> object:
                error = OSError(98, "Address already in use")
                return fail(CannotListenError("127.0.0.1", 6697, error))

        server = ChatServer(ServerConfig())
        listener = Listener("tls:tcp:6697", Refusing(), server)  # type: ignore[arg-type]
        error = self.assertRaises(ListenError, listener.privilegedStartService)
        self.assertEqual(
            str(error), "cannot listen on 127.0.0.1:6697: Address already in use"
        )

    def test_listen_error_in_the_foreground_exits_with_one_line(self) -> None:
        class Refusing:
            def listen(self, factory: IProtocolFactory) -> object:
                error = OSError(98, "Address already in use")
                return fail(CannotListenError("127.0.0.1", 6697, error))

        config = ServerConfig(port=None, listen=("tcp:0",))
        service = makeService(
            config, twistd_options={"nodaemon": True, "logfile": None}, storage=False
        )
        service.listeners[0].endpoint = Refusing()  # type: ignore[assignment]
        error = self.assertRaises(SystemExit, service.privilegedStartService)
        self.assertEqual(
            str(error), "chat: cannot listen on 127.0.0.1:6697: Address already in use"
        )
        daemon = makeService(config, twistd_options={"logfile": "x"}, storage=False)
        daemon.listeners[0].endpoint = Refusing()  # type: ignore[assignment]
        self.assertRaises(ListenError, daemon.privilegedStartService)

    def test_certificate_needs_a_tls_listener(self) -> None:
        config = ServerConfig(
            port=None, listen=("tcp:0",), cert=Path("c.pem"), key=Path("k.pem")
        )
        error = self.assertRaises(ConfigError, makeService, config, storage=False)
        self.assertIn("no listener uses TLS", str(error))

    def test_version_comes_from_setup_cfg(self) -> None:
        self.assertEqual(__version__, setup_cfg_version())


class DefaultPortTests(TestCase):
    def test_make_run_server_and_client_agree(self) -> None:
        from chat.client.config import DEFAULT_PORT

        makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
        [make_port] = re.findall(r"^PORT \?= (\d+)$", makefile, re.MULTILINE)
        self.assertEqual(int(make_port), ServerConfig().port)
        self.assertEqual(DEFAULT_PORT, ServerConfig().port)

    def test_client_command_is_relative_to_the_checkout(self) -> None:
        here = Path.cwd()
        command = client_command(6697, here / "certs" / "ca.pem")
        python = Path(sys.executable).absolute()
        shown = python.relative_to(here) if python.is_relative_to(here) else python
        self.assertEqual(
            command,
            f"{shown} -m chat.client --host localhost --port 6697 --ca certs/ca.pem",
        )
