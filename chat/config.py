"""The server's configuration: one typed object with safe defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds; everything timed runs on the injected reactor clock."""

    registration: float = 60.0
    ping_interval: float = 90.0
    ping_timeout: float = 120.0


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
