"""Command-line options of ``twistd chat``."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from twisted.python import usage

from chat.config import (
    ConfigError,
    ConfigFileError,
    ServerConfig,
    check,
    load_config,
)
from chat.version import DISTRIBUTION, __version__

#: Options whose value is a setting, by option name -> `ServerConfig` field.
SETTINGS = {
    "port": "port",
    "cert": "cert",
    "key": "key",
    "cert-dir": "cert_dir",
    "server-name": "server_name",
    "network": "network",
    "motd": "motd_file",
    "password": "password",
    "data-dir": "data_dir",
    "workers": "workers",
    "worker": "worker",
    "log-format": "log_format",
    "metrics": "metrics",
    "database": "database",
    "web": "web_port",
    "web-dev-http": "web_dev_http",
}


class Options(usage.Options):
    """``twistd chat [options]``: the IRC server's settings."""

    synopsis = "[options]"
    longdesc = f"""\
{DISTRIBUTION} {__version__}: an IRC server speaking TLS (1.2 and newer) on
--port, 6697 by default.

Every option can also be set in a TOML file given with --config, with the
same names (server-name or server_name, motd, listen = [...], ...) and the
tables [operators] (name = "scrypt$..." hashes from `python -m
chat.passwords`), [limits], [timeouts], [accounts] (min-password-length,
max-password-length, registration-before-connect, email-required), and
[cluster] (redis, node-name, lease, stream-length: the entries each bus
stream keeps, 10000 by default, and database); the command line wins over
the file.  Relative
paths in the file are relative to the file.

Without --cert/--key a development CA and a certificate for localhost,
127.0.0.1 and ::1 are created in --cert-dir on first start and reused later.

--web PORT also serves the web client over HTTPS, and IRC over WebSocket
at /socket, with the same certificate; --web-dev-http PORT serves them over
plain HTTP on 127.0.0.1 only (development).  The [web] table of the file
also takes allowed-origins = ["https://chat.example.org"] (default: the
page's own origin) and trusted-proxies = ["10.0.0.1"] (whose X-Forwarded-For
gives the client's address).  --listen web:tls:tcp:PORT:interface=ADDR and
web:tcp:... open other web listeners.

SIGHUP reloads the configuration file, the MOTD and the certificate and key
without dropping clients; a bad new configuration is logged and ignored.
SIGTERM sends ERROR to every client and exits.  Listener changes (--port,
--listen, --metrics, --web, --web-dev-http) and --database need a restart."""

    optParameters = [
        ["config", "c", None, "TOML configuration file."],
        [
            "port",
            "p",
            None,
            "TLS port on all interfaces (default: 6697, or none when only "
            "--listen is given).",
        ],
        ["cert", None, None, "PEM certificate (chain, leaf first)."],
        ["key", None, None, "PEM private key of --cert."],
        [
            "cert-dir",
            None,
            None,
            "Directory of the development CA and certificate (default: certs).",
        ],
        ["server-name", None, None, "Server name (default: chat.localhost)."],
        ["network", None, None, "Network name in ISUPPORT (default: ChatNet)."],
        ["motd", None, None, "File with the message of the day (UTF-8)."],
        [
            "password",
            None,
            None,
            "Connection password (PASS); visible to other local users in the "
            "process list, prefer the config file.",
        ],
        ["data-dir", None, None, "Directory for stored data (default: data)."],
        [
            "workers",
            None,
            None,
            "Run N node processes behind the same ports (SO_REUSEPORT), one "
            "per core; needs --cluster (default: 1).",
        ],
        ["worker", None, None, "Internal: the number of a --workers process."],
        [
            "database",
            None,
            None,
            "Where accounts, channels and history go: sqlite (default, files "
            "in --data-dir) or postgresql://user@host:5432/dbname; give a "
            "password in the config file or ~/.pgpass, not here.",
        ],
        [
            "log-format",
            None,
            None,
            "Log format: text (default) or json (one object per line: time, "
            "level, event, message and the event's fields).",
        ],
        [
            "metrics",
            None,
            None,
            "Endpoint of a Prometheus metrics page, e.g. "
            "tcp:9100:interface=127.0.0.1 (default: none).",
        ],
        [
            "cluster",
            None,
            None,
            "Cluster mode: the Redis shared by the nodes of one network, "
            "redis://host:port/db (default: none, a single server).",
        ],
        [
            "node-name",
            None,
            None,
            "This node's name in the cluster, unique in the network "
            "(default: the server name).",
        ],
        [
            "web",
            None,
            None,
            "HTTPS port of the web client and WebSocket, all interfaces "
            "(default: none).",
        ],
        [
            "web-dev-http",
            None,
            None,
            "Plain HTTP port of the web client on 127.0.0.1 only, for "
            "development (default: none).",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self.config = ServerConfig()

    def parseOptions(self, options: list[str] | None = None) -> None:
        """Keep the arguments: ``--workers`` runs workers with the same."""
        self.arguments = list(options or [])
        super().parseOptions(options)

    def opt_listen(self, endpoint: str) -> None:
        """Also listen on ENDPOINT (repeatable): tcp:6667 is plaintext, tls:6697
        TLS, web:tls:8443 the web client over TLS."""
        self["listen"].append(endpoint)

    def overrides(self) -> dict[str, Any]:
        """The settings given on the command line, by field name."""
        values: dict[str, Any] = {
            field: self[option]
            for option, field in SETTINGS.items()
            if self[option] is not None
        }
        if self["listen"]:
            values["listen"] = tuple(self["listen"])
        return values

    def load(self) -> ServerConfig:
        """Read the configuration file again and apply the command line."""
        path = Path(self["config"]) if self["config"] else None
        config = load_config(path, self.overrides())
        cluster = {
            key: self[option]
            for option, key in (("cluster", "redis"), ("node-name", "node-name"))
            if self[option] is not None
        }
        if not cluster:
            return config
        current = {
            "redis": config.cluster.redis,
            "node-name": config.cluster.node_name,
            "lease": config.cluster.lease,
            "stream-length": config.cluster.stream_length,
        }
        merged = {key: value for key, value in current.items() if value}
        merged.update(cluster)
        return replace(config, cluster=check("cluster", merged))

    def opt_version(self) -> None:
        """Show the chat-server version and exit."""
        print(f"{DISTRIBUTION} {__version__}")
        sys.exit(0)

    def postOptions(self) -> None:
        try:
            self.config = self.load()
        except ConfigFileError as error:
            # The file is wrong, not the command line: no usage text.
            raise SystemExit(f"chat: {error}") from error
        except ConfigError as error:
            raise usage.UsageError(str(error)) from error
