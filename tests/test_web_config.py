"""The [web] settings, the web listeners they open, and the origin and
forwarded-address rules."""

from __future__ import annotations

from pathlib import Path

from twisted.python import usage
from twisted.trial.unittest import TestCase

from chat.config import ConfigError, ServerConfig, WebConfig, load_config
from chat.options import Options
from chat.service import listener_descriptions, needs_tls
from chat.web.origins import origin_allowed, own_origin, parse_origin
from chat.web.proxies import forwarded_for, forwarded_scheme

WEB = """
[web]
port = 8443
dev-http = 8081
allowed-origins = ["https://chat.example.org", "https://chat.example.org:8443"]
trusted-proxies = ["10.0.0.1", "fd00::/8"]
"""


class WebSettingsTests(TestCase):
    def write(self, text: str) -> Path:
        path = Path(self.mktemp())
        path.write_text(text, encoding="utf-8")
        return path

    def test_default_is_off(self) -> None:
        config = load_config()
        self.assertEqual(config.web, WebConfig())
        self.assertFalse(
            any(d.startswith("web:") for d in listener_descriptions(config))
        )

    def test_file(self) -> None:
        web = load_config(self.write(WEB)).web
        self.assertEqual(web.port, 8443)
        self.assertEqual(web.dev_http, 8081)
        self.assertEqual(
            web.allowed_origins,
            ("https://chat.example.org", "https://chat.example.org:8443"),
        )
        self.assertEqual(web.trusted_proxies, ("10.0.0.1", "fd00::/8"))

    def test_command_line_changes_one_key(self) -> None:
        options = Options()
        options.parseOptions(["--config", str(self.write(WEB)), "--web", "9443"])
        self.assertEqual(options.config.web.port, 9443)
        self.assertEqual(options.config.web.dev_http, 8081)
        self.assertEqual(options.config.web.trusted_proxies, ("10.0.0.1", "fd00::/8"))

    def test_command_line_alone(self) -> None:
        options = Options()
        options.parseOptions(["--web", "8443", "--web-dev-http", "8081"])
        self.assertEqual(options.config.web, WebConfig(port=8443, dev_http=8081))

    def test_bad_values(self) -> None:
        for text, expected in (
            ('[web]\nport = "x"', "web.port"),
            ('[web]\nallowed-origins = ["chat.example.org"]', "not an origin"),
            ('[web]\nallowed-origins = "https://a.example"', "list of strings"),
            ('[web]\ntrusted-proxies = ["10.0.0.300"]', "not an address"),
            ("[web]\nstatic = 1", "unknown setting 'static'"),
            ('web = "8443"', "must be a table"),
        ):
            with self.assertRaises(ConfigError) as caught:
                load_config(self.write(text))
            self.assertIn(expected, str(caught.exception))

    def test_bad_port_on_the_command_line(self) -> None:
        with self.assertRaises(usage.UsageError):
            Options().parseOptions(["--web", "70000"])

    def test_listeners(self) -> None:
        config = ServerConfig(web=WebConfig(port=8443, dev_http=8081))
        descriptions = listener_descriptions(config)
        self.assertIn("web:tls:tcp:8443", descriptions)
        # Plaintext only ever on the loopback interface.
        self.assertIn("web:tcp:8081:interface=127.0.0.1", descriptions)
        self.assertTrue(needs_tls("web:tls:tcp:8443"))
        self.assertFalse(needs_tls("web:tcp:8081:interface=127.0.0.1"))

    def test_web_listener_change_needs_a_restart(self) -> None:
        before = ServerConfig()
        self.assertTrue(before.listeners_differ(ServerConfig(web=WebConfig(port=1))))
        self.assertFalse(
            before.listeners_differ(ServerConfig(web=WebConfig(allowed_origins=("*",))))
        )


class OriginTests(TestCase):
    def test_parse(self) -> None:
        self.assertEqual(
            parse_origin("https://Chat.Example.org"), ("https", "chat.example.org", 443)
        )
        self.assertEqual(parse_origin("http://[::1]:8081"), ("http", "::1", 8081))
        for bad in (
            "null",
            "chat.example.org",
            "ftp://x",
            "https://a/b",
            "https://u@a",
            "https://a:99999",
        ):
            self.assertIsNone(parse_origin(bad), bad)

    def test_own_origin_by_default(self) -> None:
        own = own_origin("https", "localhost:8443")
        self.assertTrue(origin_allowed("https://localhost:8443", (), own))
        self.assertFalse(origin_allowed("https://localhost:8444", (), own))
        self.assertFalse(origin_allowed("http://localhost:8443", (), own))
        self.assertFalse(origin_allowed("https://evil.example", (), own))
        self.assertFalse(origin_allowed("https://localhost:8443", (), None))

    def test_listed(self) -> None:
        allowed = ("https://chat.example.org",)
        own = own_origin("https", "irc.example.org")
        self.assertTrue(origin_allowed("https://chat.example.org:443", allowed, own))
        self.assertFalse(origin_allowed("https://irc.example.org", allowed, own))
        self.assertTrue(origin_allowed("null", ("*",), own))


class ForwardedTests(TestCase):
    def test_untrusted_peer(self) -> None:
        self.assertEqual(
            forwarded_for("203.0.113.5", "198.51.100.7", ()), "203.0.113.5"
        )
        self.assertEqual(
            forwarded_for("203.0.113.5", "198.51.100.7", ("10.0.0.1",)), "203.0.113.5"
        )

    def test_rightmost_untrusted(self) -> None:
        trusted = ("10.0.0.0/8",)
        header = "192.0.2.1, 198.51.100.7, 10.2.2.2"
        self.assertEqual(forwarded_for("10.0.0.1", header, trusted), "198.51.100.7")

    def test_all_trusted(self) -> None:
        self.assertEqual(
            forwarded_for("10.0.0.1", "10.0.0.2", ("10.0.0.0/8",)), "10.0.0.2"
        )

    def test_forms(self) -> None:
        trusted = ("::1", "127.0.0.1")
        self.assertEqual(
            forwarded_for("::1", "[2001:db8::5]:4711", trusted), "2001:db8::5"
        )
        self.assertEqual(
            forwarded_for("127.0.0.1", "198.51.100.7:4711", trusted), "198.51.100.7"
        )
        self.assertEqual(
            forwarded_for("::ffff:127.0.0.1", "198.51.100.7", trusted), "198.51.100.7"
        )

    def test_garbage_stops_at_the_last_trusted_hop(self) -> None:
        trusted = ("10.0.0.0/8",)
        self.assertEqual(
            forwarded_for("10.0.0.1", "evil, 10.0.0.2", trusted), "10.0.0.2"
        )
        self.assertEqual(forwarded_for("10.0.0.1", "<script>", trusted), "10.0.0.1")

    def test_scheme(self) -> None:
        trusted = ("10.0.0.1",)
        self.assertEqual(
            forwarded_scheme("10.0.0.1", "https", trusted, "http"), "https"
        )
        self.assertEqual(forwarded_scheme("10.0.0.9", "https", trusted, "http"), "http")
        self.assertEqual(
            forwarded_scheme("10.0.0.1", "gopher", trusted, "http"), "http"
        )
