"""Client settings from TOML and the command line, and TLS choices."""

from __future__ import annotations

import os
from pathlib import Path

from OpenSSL import SSL
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from chat.client.config import (
    DEFAULT_PORT,
    ClientConfig,
    ConfigError,
    default_config_path,
    from_args,
)
from chat.client.security import SecurityError, client_security, describe_failure


class ConfigTests(TestCase):
    def setUp(self) -> None:
        self.home = Path(self.mktemp())
        self.home.mkdir()
        old = os.environ.get("XDG_CONFIG_HOME")
        os.environ["XDG_CONFIG_HOME"] = str(self.home)

        def restore() -> None:
            if old is None:
                os.environ.pop("XDG_CONFIG_HOME", None)
            else:
                os.environ["XDG_CONFIG_HOME"] = old

        self.addCleanup(restore)

    def write(self, text: str) -> Path:
        path = default_config_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def test_defaults(self) -> None:
        config = from_args([])
        self.assertEqual((config.host, config.port), ("localhost", DEFAULT_PORT))
        self.assertFalse(config.plain)
        self.assertEqual(
            default_config_path(), self.home / "chat-client" / "config.toml"
        )

    def test_default_file_then_options(self) -> None:
        self.write(
            'host = "irc.example.org"\nnick = "zoe"\njoin = ["#a", "#b"]\n'
            '[sasl]\nuser = "zoe"\npassword = "pw"\n[ui]\nscrollback = 50\n'
        )
        config = from_args(["--nick", "zed", "--join", "#c, #d"])
        self.assertEqual(config.host, "irc.example.org")
        self.assertEqual(config.nick, "zed")
        self.assertEqual(config.join, ("#c", "#d"))
        self.assertEqual(config.scrollback, 50)
        self.assertEqual(config.sasl_mechanism, "PLAIN")

    def test_explicit_config_file(self) -> None:
        path = self.home / "other.toml"
        path.write_text('port = 7000\nca = "~/ca.pem"\n')
        config = from_args(["--config", str(path)])
        self.assertEqual(config.port, 7000)
        self.assertEqual(config.ca, Path("~/ca.pem").expanduser())

    def test_errors_are_sentences(self) -> None:
        self.write("colour = 3\n")
        error = self.assertRaises(ConfigError, from_args, [])
        self.assertIn("unknown setting(s): colour", str(error))
        self.write("host = \n")
        error = self.assertRaises(ConfigError, from_args, [])
        self.assertIn("is not valid TOML", str(error))
        error = self.assertRaises(ConfigError, from_args, ["--config", "/nonexistent"])
        self.assertIn("cannot read /nonexistent", str(error))
        self.write("")
        error = self.assertRaises(ConfigError, from_args, ["--plain", "--insecure"])
        self.assertIn("cannot be combined", str(error))

    def test_certificate_means_external(self) -> None:
        config = ClientConfig(cert=Path("me.pem"))
        self.assertEqual(config.sasl_mechanism, "EXTERNAL")
        self.assertIsNone(ClientConfig().sasl_mechanism)


class SecurityTests(TestCase):
    def test_plain_warns(self) -> None:
        security = client_security(ClientConfig(plain=True))
        self.assertIsNone(security.options)
        self.assertIn("Not encrypted", security.warning or "")

    def test_insecure_warns(self) -> None:
        security = client_security(ClientConfig(insecure=True))
        self.assertIsNotNone(security.options)
        self.assertEqual(security.summary, "TLS UNVERIFIED (--insecure)")
        self.assertIn("NOT checked", security.warning or "")

    def test_verified_by_default(self) -> None:
        config = ClientConfig(host="irc.example.org", dev_ca=Path("missing.pem"))
        security = client_security(config)
        self.assertEqual(security.summary, "TLS verified (system trust store)")
        self.assertIsNone(security.warning)

    def test_dev_ca_only_for_localhost(self) -> None:
        path = Path(self.mktemp())
        path.write_text("not a certificate")
        error = self.assertRaises(
            SecurityError, client_security, ClientConfig(host="localhost", dev_ca=path)
        )
        self.assertIn("is not a PEM certificate", str(error))
        security = client_security(ClientConfig(host="irc.example.org", dev_ca=path))
        self.assertEqual(security.summary, "TLS verified (system trust store)")

    def test_failures_in_words(self) -> None:
        verify = Failure(SSL.Error([("SSL routines", "", "certificate verify failed")]))
        text = describe_failure(verify, "irc.example.org")
        self.assertIn("it is not signed by a CA this client trusts", text or "")
        self.assertNotIn("certs/ca.pem", text or "")
        other = Failure(SSL.Error([("SSL routines", "", "wrong version number")]))
        self.assertEqual(
            describe_failure(other, "h"),
            "The TLS handshake with h failed: wrong version number.",
        )
        self.assertIsNone(describe_failure(Failure(ConnectionDone()), "h"))

    def test_unreadable_files(self) -> None:
        error = self.assertRaises(
            SecurityError, client_security, ClientConfig(ca=Path("/nonexistent/ca"))
        )
        self.assertIn("cannot read CA file /nonexistent/ca", str(error))
        error = self.assertRaises(
            SecurityError, client_security, ClientConfig(cert=Path("/nonexistent/c"))
        )
        self.assertIn("cannot read /nonexistent/c", str(error))
