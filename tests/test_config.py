"""Configuration: defaults, the TOML file, command-line overrides, checks."""

from __future__ import annotations

import re
from pathlib import Path

from twisted.python import usage
from twisted.trial.unittest import TestCase

from chat.config import (
    AccountSettings,
    ConfigError,
    Limits,
    ServerConfig,
    Timeouts,
    load_config,
)
from chat.options import Options

HASH = "scrypt$16384$8$1$c2FsdA==$aGFzaA=="

EXAMPLE = f"""
server-name = "irc.example.org"
network = "ExampleNet"
port = 7000
listen = ["tcp:6667:interface=127.0.0.1"]
cert = "tls/fullchain.pem"
key = "/etc/chat/privkey.pem"
motd = "motd.txt"
password = "sesame"
log_format = "json"
metrics = "tcp:9100:interface=127.0.0.1"

[operators]
alice = "{HASH}"

[limits]
nick-length = 20
max_channels = 10
flood-rate = 0.5
exempt = ["10.0.0.0/8"]

[timeouts]
ping-timeout = 30

[accounts]
min-password-length = 12
email-required = true
"""


class LoadConfigTests(TestCase):
    def write(self, text: str) -> Path:
        path = Path(self.mktemp())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def test_defaults(self) -> None:
        self.assertEqual(load_config(), ServerConfig())

    def test_file_values(self) -> None:
        path = self.write(EXAMPLE)
        config = load_config(path)
        self.assertEqual(config.server_name, "irc.example.org")
        self.assertEqual(config.network, "ExampleNet")
        self.assertEqual(config.port, 7000)
        self.assertEqual(config.listen, ("tcp:6667:interface=127.0.0.1",))
        self.assertEqual(config.cert, path.parent / "tls" / "fullchain.pem")
        self.assertEqual(config.key, Path("/etc/chat/privkey.pem"))
        self.assertEqual(config.motd_file, path.parent / "motd.txt")
        self.assertEqual(config.password, "sesame")
        self.assertEqual(config.operators, {"alice": HASH})
        self.assertEqual(
            config.limits,
            Limits(
                nick_length=20, max_channels=10, flood_rate=0.5, exempt=("10.0.0.0/8",)
            ),
        )
        self.assertEqual(config.timeouts, Timeouts(ping_timeout=30.0))
        self.assertEqual(
            config.accounts,
            AccountSettings(min_password_length=12, email_required=True),
        )
        self.assertEqual(config.log_format, "json")
        self.assertEqual(config.metrics, "tcp:9100:interface=127.0.0.1")

    def test_command_line_wins(self) -> None:
        path = self.write(EXAMPLE)
        config = load_config(path, {"port": "8080", "network": "Other"})
        self.assertEqual(config.port, 8080)
        self.assertEqual(config.network, "Other")
        self.assertEqual(config.server_name, "irc.example.org")

    def test_listen_without_port_opens_only_listen(self) -> None:
        config = load_config(None, {"listen": ("tcp:6667",)})
        self.assertIsNone(config.port)
        self.assertEqual(config.listen, ("tcp:6667",))

    def test_listen_with_port_keeps_both(self) -> None:
        config = load_config(None, {"listen": ("tcp:6667",), "port": "8080"})
        self.assertEqual(config.port, 8080)

    def test_port_in_file_with_listen_on_command_line(self) -> None:
        config = load_config(self.write("port = 7000\n"), {"listen": ("tcp:6667",)})
        self.assertEqual(config.port, 7000)

    def assertRejected(self, text: str, *words: str) -> None:
        error = self.assertRaises(ConfigError, load_config, self.write(text))
        for word in words:
            self.assertIn(word, str(error))

    def test_bad_values(self) -> None:
        self.assertRejected('port = "x"\n', "port")
        self.assertRejected("port = 70000\n", "port", "65535")
        self.assertRejected('server-name = "a b"\n', "server-name")
        self.assertRejected('log-format = "xml"\n', "log-format", "json")
        self.assertRejected("listen = 5\n", "listen")
        self.assertRejected("[limits]\nnick-length = 0\n", "nick-length")
        self.assertRejected("[limits]\nnick-length = true\n", "nick-length")
        self.assertRejected('[timeouts]\nping-timeout = "soon"\n', "ping-timeout")
        self.assertRejected("limits = 3\n", "limits")
        self.assertRejected('[limits]\nexempt = "10.0.0.1"\n', "exempt")
        self.assertRejected("[limits]\nflood-rate = -1\n", "flood-rate")
        self.assertRejected("[accounts]\nemail-required = 1\n", "email-required")
        self.assertRejected(
            "[accounts]\nmin-password-length = 0\n", "min-password-length"
        )

    def test_unknown_settings(self) -> None:
        self.assertRejected("colour = 1\n", "colour")
        self.assertRejected("[limits]\nspeed = 1\n", "speed", "limits")

    def test_operators_need_hashes(self) -> None:
        self.assertRejected('[operators]\nbob = "plaintext"\n', "bob", "chat.passwords")
        self.assertRejected('operators = "x"\n', "operators")

    def test_not_toml(self) -> None:
        self.assertRejected("port = = 1\n", "not valid TOML")

    def test_missing_file(self) -> None:
        error = self.assertRaises(ConfigError, load_config, Path("/nonexistent.toml"))
        self.assertIn("/nonexistent.toml", str(error))


class OptionsTests(TestCase):
    def parse(self, *argv: str) -> Options:
        options = Options()
        options.parseOptions(list(argv))
        return options

    def test_defaults(self) -> None:
        self.assertEqual(self.parse().config, ServerConfig())

    def test_every_option(self) -> None:
        config = self.parse(
            "--port=8080",
            "--listen=tcp:6667",
            "--listen=tls:6698",
            "--cert=c.pem",
            "--key=k.pem",
            "--cert-dir=cd",
            "--server-name=irc.test",
            "--network=Net",
            "--motd=m.txt",
            "--password=pw",
            "--data-dir=dd",
            "--log-format=json",
            "--metrics=tcp:9100",
        ).config
        self.assertEqual(
            config,
            ServerConfig(
                server_name="irc.test",
                network="Net",
                port=8080,
                listen=("tcp:6667", "tls:6698"),
                cert=Path("c.pem"),
                key=Path("k.pem"),
                data_dir=Path("dd"),
                cert_dir=Path("cd"),
                motd_file=Path("m.txt"),
                password="pw",
                log_format="json",
                metrics="tcp:9100",
            ),
        )

    def test_config_file_and_override(self) -> None:
        path = Path(self.mktemp())
        path.write_text('network = "FileNet"\nport = 7000\n')
        config = self.parse("--config", str(path), "--port", "7001").config
        self.assertEqual((config.network, config.port), ("FileNet", 7001))

    def test_bad_value_is_a_usage_error(self) -> None:
        error = self.assertRaises(usage.UsageError, self.parse, "--port=http")
        self.assertIn("port", str(error))

    def test_help_names_every_option(self) -> None:
        text = str(Options())
        for option in (
            "--config",
            "--port",
            "--listen",
            "--cert",
            "--key",
            "--cert-dir",
            "--server-name",
            "--network",
            "--motd",
            "--password",
            "--data-dir",
            "--log-format",
            "--metrics",
            "SIGHUP",
            "[operators]",
        ):
            self.assertIn(option, text)


class ExampleFileTests(TestCase):
    def test_example_loads_with_every_setting_uncommented(self) -> None:
        example = (
            Path(__file__).resolve().parent.parent / "deploy" / "chat.toml.example"
        )
        text = example.read_text(encoding="utf-8")
        uncommented = re.sub(r"(?m)^#(?=[\w-]+ = )", "", text)
        path = Path(self.mktemp())
        path.write_text(uncommented, encoding="utf-8")
        config = load_config(path)
        self.assertEqual(config.server_name, "irc.example.org")
        self.assertEqual(config.metrics, "tcp:9100:interface=127.0.0.1")
        self.assertEqual(len(config.listen), 2)
        self.assertEqual(list(config.operators), ["alice"])
        self.assertEqual(config.limits, Limits())
        self.assertEqual(config.timeouts, Timeouts())
        self.assertEqual(config.accounts, AccountSettings())
        self.assertEqual(load_config(example).limits, Limits())
