"""``client.log``: what went wrong, and on which connection.

Only errors by default (``log_level`` raises or lowers that); Twisted's
chatter about factories starting and connection retries stays out.  Each
line names the connection it is about (``host:port nick pid N``), so
several networks, and several clients, can share one file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import IO, Any

from twisted.logger import (
    FileLogObserver,
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    eventAsText,
    formatTime,
)

from chat.client.connection import Session

LEVELS = {
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warn": LogLevel.warn,
    "error": LogLevel.error,
}


def connection_label(event: dict[str, Any]) -> str:
    """``host:port nick pid N`` for events about a session or its protocol."""
    source = event.get("log_source")
    session = getattr(source, "session", source)
    pid = f"pid {os.getpid()}"
    if isinstance(session, Session):
        config = session.config
        return f"{config.host}:{config.port} {session.state.nick} {pid}"
    return pid


def error_log_observer(
    handle: IO[str],
    label: Callable[[dict[str, Any]], str] = connection_label,
    level: str = "error",
) -> ILogObserver:
    """Write events of *level* and above to *handle*, each naming *label*."""

    def format_event(event: dict[str, Any]) -> str:
        text = eventAsText(event, includeTimestamp=False, includeSystem=False)
        stamp = formatTime(event.get("log_time"))
        return f"{stamp} [{label(event)}] {text}\n"

    predicate = LogLevelFilterPredicate(defaultLogLevel=LEVELS[level])
    return FilteringLogObserver(FileLogObserver(handle, format_event), [predicate])
