"""The client's settings: a TOML file, then command-line options on top.

Example ``~/.config/chat-client/config.toml``::

    host = "irc.example.org"
    port = 6697
    nick = "alice"
    join = ["#team", "#random"]
    log_level = "error"   # what client.log records: error, warn, info, debug

    [sasl]
    user = "alice"
    password = "secret"

    [ui]
    scrollback = 5000
    paste_threshold = 3
    highlights = ["deploy", "alice-team"]
    bell = true
    notify = "auto"   # or "notify-send", "osc777", "osc9"; default "off"

    [logs]
    enabled = true    # default false
    max_bytes = 1000000
    keep = 5
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

#: The server's default TLS port.
DEFAULT_PORT = 6697


class ConfigError(Exception):
    """The configuration file or options are unusable; the text says why."""


def default_config_path() -> Path:
    """``$XDG_CONFIG_HOME/chat-client/config.toml`` (``~/.config`` if unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "chat-client" / "config.toml"


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/chat-client`` (``~/.local/state`` if unset)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "chat-client"


def log_path() -> Path:
    """``$XDG_STATE_HOME/chat-client/client.log``: errors go there."""
    return default_state_dir() / "client.log"


def _default_nick() -> str:
    name = os.environ.get("USER") or os.environ.get("LOGNAME") or "guest"
    return "".join(c for c in name if c.isalnum() or c in "-_[]\\`^{|}")[:16] or "guest"


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything the client needs to connect and to draw."""

    host: str = "localhost"
    port: int = DEFAULT_PORT
    nick: str = field(default_factory=_default_nick)
    user: str = ""
    realname: str = ""
    join: tuple[str, ...] = ()
    password: str | None = None
    ca: Path | None = None
    insecure: bool = False
    plain: bool = False
    cert: Path | None = None
    sasl_user: str | None = None
    sasl_password: str | None = None
    scrollback: int = 2000
    paste_threshold: int = 3
    lag_interval: float = 30.0
    ping_timeout: float = 120.0
    reconnect_initial: float = 1.0
    reconnect_max: float = 120.0
    history_lines: int = 50
    #: Words (besides your nick) that make a line a highlight.
    highlights: tuple[str, ...] = ()
    #: Ring the terminal bell on a highlight or a private message.
    bell: bool = True
    #: Desktop notification: off, auto, notify-send, osc777 or osc9.
    notify: str = "off"
    #: Conversation logs under state_dir/logs (off by default), rotated by size.
    logs_enabled: bool = False
    logs_max_bytes: int = 1_000_000
    logs_keep: int = 5
    #: What client.log records: error (the default), warn, info or debug.
    log_level: str = "error"
    #: Where the server's development CA is looked for (relative to the cwd).
    dev_ca: Path = Path("certs/ca.pem")
    #: Where the ignore list (and conversation logs) are kept.
    state_dir: Path = field(default_factory=default_state_dir)

    @property
    def username(self) -> str:
        return self.user or self.nick

    @property
    def real_name(self) -> str:
        return self.realname or self.nick

    @property
    def sasl_mechanism(self) -> str | None:
        """``PLAIN`` with a password, else ``EXTERNAL`` with a certificate."""
        if self.sasl_user and self.sasl_password:
            return "PLAIN"
        if self.cert is not None:
            return "EXTERNAL"
        return None


_FILE_KEYS = {f.name for f in fields(ClientConfig)}
NOTIFY_CHOICES = ("off", "auto", "notify-send", "osc777", "osc9")
LOG_LEVELS = ("error", "warn", "info", "debug")
_PATHS = {"ca", "cert", "dev_ca", "state_dir"}


def _from_table(table: dict[str, Any], source: str) -> dict[str, Any]:
    """Flatten the TOML tables into `ClientConfig` keyword arguments."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key in ("sasl", "logs") and isinstance(value, dict):
            for sub, sub_value in value.items():
                values[f"{key}_{sub}".replace("-", "_")] = sub_value
        elif key == "ui" and isinstance(value, dict):
            values.update(value)
        else:
            values[key.replace("-", "_")] = value
    unknown = sorted(set(values) - _FILE_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown setting(s): {', '.join(unknown)}")
    if isinstance(values.get("join"), str):
        values["join"] = _split_channels(values["join"])
    for key in ("join", "highlights"):
        if isinstance(values.get(key), list):
            values[key] = tuple(values[key])
    if values.get("log_level", "error") not in LOG_LEVELS:
        raise ConfigError(f"{source}: log_level must be one of {', '.join(LOG_LEVELS)}")
    if values.get("notify", "off") not in NOTIFY_CHOICES:
        raise ConfigError(
            f"{source}: notify must be one of {', '.join(NOTIFY_CHOICES)}"
        )
    for key in _PATHS & set(values):
        values[key] = Path(values[key]).expanduser()
    return values


def load_file(path: Path) -> dict[str, Any]:
    """Read a TOML file into `ClientConfig` keyword arguments."""
    try:
        with path.open("rb") as handle:
            table = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    return _from_table(table, str(path))


def _split_channels(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chat.client",
        description="A terminal IRC client (TLS by default).",
        epilog=f"Settings are read from --config FILE, by default "
        f"{default_config_path()}; options given here win.",
    )
    add = parser.add_argument
    add("--host", help="server name or address (default: localhost)")
    add("--port", type=int, help=f"server port (default: {DEFAULT_PORT})")
    add("--nick", help="your nickname (default: your login name)")
    add("--user", help="user name sent to the server (default: the nick)")
    add("--realname", help="real name shown in WHOIS (default: the nick)")
    add("--join", metavar="'#a,#b'", help="channels to join once connected")
    add("--password", help="server password (PASS)")
    add("--ca", metavar="FILE", help="trust this CA certificate (PEM)")
    add(
        "--insecure",
        action="store_true",
        default=None,
        help="do not verify the server certificate (dangerous)",
    )
    add(
        "--plain",
        action="store_true",
        default=None,
        help="connect without TLS (only if you really mean it)",
    )
    add(
        "--cert",
        metavar="FILE",
        help="client certificate and key (PEM) for TLS and SASL EXTERNAL",
    )
    add("--sasl-user", help="account name for SASL login")
    add("--sasl-password", help="password for SASL PLAIN login")
    add(
        "--log-level",
        choices=LOG_LEVELS,
        help=f"what {log_path()} records (default: error)",
    )
    add("--config", metavar="FILE", help="TOML settings file")
    return parser


def from_args(argv: Sequence[str] | None = None) -> ClientConfig:
    """Parse the command line, read the config file, and merge them."""
    args = build_parser().parse_args(argv)
    values: dict[str, Any] = {}
    if args.config is not None:
        values.update(load_file(Path(args.config).expanduser()))
    elif default_config_path().exists():
        values.update(load_file(default_config_path()))
    for key in (
        "host",
        "port",
        "nick",
        "user",
        "realname",
        "password",
        "insecure",
        "plain",
        "sasl_user",
        "sasl_password",
        "log_level",
    ):
        value = getattr(args, key)
        if value is not None:
            values[key] = value
    for key in ("ca", "cert"):
        value = getattr(args, key)
        if value is not None:
            values[key] = Path(value).expanduser()
    if args.join is not None:
        values["join"] = _split_channels(args.join)
    try:
        config = replace(ClientConfig(), **values)
    except TypeError as error:
        raise ConfigError(str(error)) from None
    if config.plain and config.insecure:
        raise ConfigError("--plain and --insecure cannot be combined")
    return config
