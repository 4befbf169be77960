"""The server's configuration: one typed object with safe defaults.

`load_config` builds a `ServerConfig` from three layers, each overriding the
one before: the defaults below, a TOML file (``--config``), and the command
line.  Every value goes through the same checks whichever layer it came from,
and a bad value raises `ConfigError` with a message naming the setting.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Accepted values of ``log_format``.
LOG_FORMATS = ("text", "json")
#: The prefix of every hash made by `chat.passwords`.
HASH_PREFIX = "scrypt$"
#: The ``database`` value of the embedded SQLite stores (the default).
SQLITE = "sqlite"
#: How a ``database`` URI of a PostgreSQL server starts.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class ConfigError(ValueError):
    """A configuration value or file is wrong; the message says which."""


class ConfigFileError(ConfigError):
    """The configuration file cannot be read or holds a bad setting."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Protocol limits; those with an ISUPPORT token are advertised."""

    nick_length: int = 30
    channel_length: int = 50
    topic_length: int = 390
    kick_length: int = 390
    away_length: int = 390
    max_targets: int = 4
    max_channels: int = 50
    max_list_entries: int = 100
    modes_per_command: int = 4
    whowas_history: int = 1000
    #: Message history retention: days kept (0: forever) and messages kept
    #: per channel or private conversation.
    history_days: float = 30.0
    history_per_target: int = 5000
    #: Clients on the whole server, exempt addresses included.
    max_clients: int = 10000
    #: Open connections per address (IPv4 /32, IPv6 /64).
    max_per_address: int = 16
    #: New connections per address: a burst, then this many per second.
    connect_burst: int = 16
    connect_rate: float = 0.1
    #: Fakelag: input lines a client may send at once, then per second.
    flood_burst: int = 10
    flood_rate: float = 2.0
    #: The larger allowance a new connection starts with (registration, joins).
    flood_connect_burst: int = 50
    #: Lines waiting behind the fakelag before ``Excess Flood``.
    flood_max_queued: int = 50
    #: Bytes queued for a client that does not read before ``SendQ exceeded``.
    sendq_bytes: int = 1024 * 1024
    #: Addresses or networks exempt from the per-address connection limits
    #: (not from fakelag: a flooder on the same machine is still paced).
    exempt: tuple[str, ...] = ("127.0.0.1", "::1")
    #: Addresses or networks exempt from fakelag; none by default.
    fakelag_exempt: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds; everything timed runs on the injected reactor clock."""

    registration: float = 60.0
    ping_interval: float = 90.0
    ping_timeout: float = 120.0
    #: After ``ERROR``, how long a closing connection may take to flush.
    close_grace: float = 10.0
    #: How long a user may keep a registered nick without logging in to it.
    nick_grace: float = 30.0


@dataclass(frozen=True, slots=True)
class Cluster:
    """Cluster mode: nodes sharing one Redis form one network (`chat.cluster`)."""

    #: ``redis://host:port/db``; empty: a single server, no cluster.
    redis: str = ""
    #: This node's name, unique in the network; shown in WHOIS.
    node_name: str = ""
    #: Seconds after which a node that stopped renewing its lease is taken
    #: for dead: its users quit (``*.net *.split``) and their nicks are free.
    lease: float = 10.0
    #: Entries each bus stream (a node's inbox, the shared one) keeps: a
    #: node away for more than that many misses events and re-syncs.
    stream_length: int = 10_000


@dataclass(frozen=True, slots=True)
class AccountSettings:
    """Account registration (REGISTER and NickServ)."""

    #: The shortest and the longest password a new account may have (the
    #: draft/account-registration spec suggests 300, to fit a NickServ line).
    min_password_length: int = 8
    max_password_length: int = 300
    #: Whether REGISTER works before connection registration is complete
    #: (``before-connect`` in the ``draft/account-registration`` value).
    registration_before_connect: bool = True
    #: Whether a new account needs an e-mail address (``email-required``).
    email_required: bool = False


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The web listener (`chat.web`): the ``[web]`` table."""

    #: HTTPS and WSS on every interface, with the server's certificate.
    port: int | None = None
    #: Plain HTTP and WS on 127.0.0.1 only, for development.
    dev_http: int | None = None
    #: Origins allowed to open a WebSocket; none: the page's own; ``*``: any.
    allowed_origins: tuple[str, ...] = ()
    #: Proxies whose ``X-Forwarded-For`` and ``X-Forwarded-Proto`` count.
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything the server needs to know, with development defaults."""

    server_name: str = "chat.localhost"
    network: str = "ChatNet"
    port: int | None = 6697
    listen: tuple[str, ...] = ()
    cert: Path | None = None
    key: Path | None = None
    data_dir: Path = Path("data")
    cert_dir: Path = Path("certs")
    motd_file: Path | None = None
    password: str | None = None
    operators: dict[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    timeouts: Timeouts = field(default_factory=Timeouts)
    cluster: Cluster = field(default_factory=Cluster)
    #: Node processes on this machine (``--workers``): see `chat.workers`.
    workers: int = 1
    #: Set in a worker process: its number.
    worker: int | None = None
    accounts: AccountSettings = field(default_factory=AccountSettings)
    log_format: str = "text"
    metrics: str | None = None
    shutdown_timeout: float = 5.0
    #: ``sqlite`` (files in `data_dir`) or a ``postgresql://`` URI.
    database: str = SQLITE
    web: WebConfig = field(default_factory=WebConfig)

    def listeners_differ(self, other: ServerConfig) -> bool:
        """Whether *other* listens elsewhere (which needs a restart)."""
        return (
            self.port,
            self.listen,
            self.metrics,
            self.web.port,
            self.web.dev_http,
        ) != (
            other.port,
            other.listen,
            other.metrics,
            other.web.port,
            other.web.dev_http,
        )


# -- checking single values -------------------------------------------------


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a non-empty string")
    return value


def _token(name: str, value: object) -> str:
    text = _text(name, value)
    if any(c.isspace() for c in text) or text.startswith(":"):
        raise ConfigError(f"{name} must not contain spaces or start with ':'")
    return text


def _port(name: str, value: object) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name} must be a port number")
    if not 0 <= value <= 65535:
        raise ConfigError(f"{name} must be between 0 and 65535, not {value}")
    return value


def _endpoints(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{name} must be a list of endpoint strings")
    return tuple(_text(name, item) for item in value)


def _path(name: str, value: object) -> Path:
    if isinstance(value, Path):
        return value
    return Path(_text(name, value)).expanduser()


def _log_format(name: str, value: object) -> str:
    if value not in LOG_FORMATS:
        raise ConfigError(f"{name} must be one of {', '.join(LOG_FORMATS)}")
    return str(value)


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{name} must be a non-negative number of seconds")
    return float(value)


def _count(name: str, value: object) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive whole number")
    return value


def _index(name: str, value: object) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be a whole number")
    return value


def _operators(name: str, value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigError(f'[{name}] must be a table of name = "scrypt$..."')
    operators: dict[str, str] = {}
    for oper, hashed in value.items():
        _token(f"operator name {oper!r}", oper)
        if not isinstance(hashed, str) or not hashed.startswith(HASH_PREFIX):
            raise ConfigError(
                f"operator {oper!r}: the password must be a hash made with "
                "'python -m chat.passwords', not plain text"
            )
        operators[oper] = hashed
    return operators


def check_database(name: str, value: object) -> str:
    """``sqlite``, or a PostgreSQL URI that libpq can read."""
    text = _text(name, value)
    if text == SQLITE:
        return text
    if not text.startswith(POSTGRES_SCHEMES):
        raise ConfigError(
            f"{name} must be {SQLITE!r} or a URI such as "
            "postgresql://user@host:5432/dbname"
        )
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(text)
    except ProgrammingError:
        # The message would repeat the URI, and with it any password.
        raise ConfigError(f"{name} is not a valid PostgreSQL URI") from None
    return text


def _strings(name: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, str) for v in value
    ):
        raise ConfigError(f"{name} must be a list of strings")
    return tuple(value)


def _origins(name: str, value: object) -> tuple[str, ...]:
    from chat.web.origins import ANY, parse_origin

    origins = _strings(name, value)
    for origin in origins:
        if origin != ANY and parse_origin(origin) is None:
            raise ConfigError(
                f"{name}: {origin!r} is not an origin like https://chat.example.org"
            )
    return origins


def _networks(name: str, value: object) -> tuple[str, ...]:
    networks = _strings(name, value)
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(
                f"{name}: {network!r} is not an address or network"
            ) from None
    return networks


#: The checks of the ``[web]`` settings.
WEB_CHECKS: dict[str, Callable[[str, object], Any]] = {
    "port": _port,
    "dev_http": _port,
    "allowed_origins": _origins,
    "trusted_proxies": _networks,
}


def _like(default: object, name: str, value: object) -> Any:
    """*value* checked against the type of the setting's *default*."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{name} must be a non-negative number")
        return float(value)
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name} must be a list of strings")
        return tuple(value)
    if isinstance(default, str):
        return _token(name, value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer")
    return value


def _section(
    cls: type[Any], checks: Mapping[str, Callable[[str, object], Any]] | None = None
) -> Callable[[str, object], Any]:
    """A checker for a table whose keys are the fields of dataclass *cls*:
    each value by its own check in *checks*, else like its default."""

    def check(name: str, value: object) -> Any:
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"[{name}] must be a table")
        defaults = cls()
        known = {f.name: getattr(defaults, f.name) for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, item in value.items():
            attr = key.replace("-", "_")
            if attr not in known:
                raise ConfigError(f"unknown setting {key!r} in [{name}]")
            setting = f"{name}.{key.replace('_', '-')}"
            if checks is not None and attr in checks:
                values[attr] = checks[attr](setting, item)
            else:
                values[attr] = _like(known[attr], setting, item)
        return cls(**values)

    return check


#: Every setting, by `ServerConfig` field name, with its check.
CHECKS: dict[str, Callable[[str, object], Any]] = {
    "server_name": _token,
    "network": _token,
    "port": _port,
    "listen": _endpoints,
    "cert": _path,
    "key": _path,
    "data_dir": _path,
    "cert_dir": _path,
    "motd_file": _path,
    "password": _text,
    "operators": _operators,
    "limits": _section(Limits),
    "timeouts": _section(Timeouts),
    "cluster": _section(Cluster),
    "workers": _count,
    "worker": _index,
    "accounts": _section(AccountSettings),
    "log_format": _log_format,
    "metrics": _text,
    "shutdown_timeout": _seconds,
    "database": check_database,
    "web": _section(WebConfig, WEB_CHECKS),
}
#: Command-line settings that go into a table: name -> (table, key).
NESTED = {"web_port": ("web", "port"), "web_dev_http": ("web", "dev_http")}
#: Settings holding file names: relative ones in a file are relative to it.
PATHS = ("cert", "key", "data_dir", "cert_dir", "motd_file")
#: Names in the TOML file that differ from the field names.
ALIASES = {"motd": "motd_file"}
#: The one key of ``[cluster]`` that is a top-level setting.
CLUSTER_DATABASE = "database"


def check(name: str, value: object) -> Any:
    """Check and convert one setting given by its `ServerConfig` field name."""
    try:
        checker = CHECKS[name]
    except KeyError:
        raise ConfigError(f"unknown setting {name!r}") from None
    return checker(name.replace("_", "-"), value)


def _cluster_database(
    table: Mapping[str, Any], data: Mapping[str, Any], values: dict[str, Any]
) -> dict[str, Any]:
    """Move ``database`` out of the ``[cluster]`` *table* into *values*
    (the top-level setting); the rest of the table."""
    rest = dict(table)
    if CLUSTER_DATABASE in rest:
        if CLUSTER_DATABASE in data:
            raise ConfigError(
                "give database either at the top or in [cluster], not both"
            )
        values["database"] = check_database(
            "cluster.database", rest.pop(CLUSTER_DATABASE)
        )
    return rest


def read_file(path: Path) -> dict[str, Any]:
    """Read and check a TOML configuration file; keys become field names."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as error:
        raise ConfigFileError(f"cannot read {path}: {error.strerror}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigFileError(f"{path} is not valid TOML: {error}") from error
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        name = ALIASES.get(name, name)
        try:
            if name == "cluster" and isinstance(value, Mapping):
                value = _cluster_database(value, data, values)
            values[name] = check(name, value)
        except ConfigError as error:
            raise ConfigFileError(f"{path}: {error}") from error
        if name in PATHS and not values[name].is_absolute():
            values[name] = path.parent / values[name]
    return values


def load_config(
    path: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> ServerConfig:
    """Build the configuration: defaults, then the file at *path*, then *overrides*.

    *overrides* (the command line) hold field names with unchecked values.
    When listeners are named and no port is, neither in the file nor in
    *overrides*, only those listeners open.
    """
    values = read_file(path) if path is not None else {}
    for name, value in (overrides or {}).items():
        if name in NESTED:
            # --web and --web-dev-http change one key of [web], not the table.
            table, key = NESTED[name]
            checked = getattr(check(table, {key: value}), key)
            current = values.get(table) or check(table, {})
            values[table] = dataclasses.replace(current, **{key: checked})
            continue
        values[name] = check(name, value)
    if values.get("listen") and "port" not in values:
        values["port"] = None
    return ServerConfig(**values)
