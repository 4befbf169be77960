"""``client.log``: what went wrong, and on which connection.

Only errors by default (``log_level`` raises or lowers that); Twisted's
chatter about factories starting and connection retries stays out.  Each
line names the connection it is about (``host:port nick``), so several
clients can share one file.
"""

from __future__ import annotations

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

LEVELS = {
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warn": LogLevel.warn,
    "error": LogLevel.error,
}


def error_log_observer(
    handle: IO[str], label: Callable[[], str], level: str = "error"
) -> ILogObserver:
    """Write events of *level* and above to *handle*, each naming *label*()."""

    def format_event(event: dict[str, Any]) -> str:
        text = eventAsText(event, includeTimestamp=False, includeSystem=False)
        stamp = formatTime(event.get("log_time"))
        return f"{stamp} [{label()}] {text}\n"

    predicate = LogLevelFilterPredicate(defaultLogLevel=LEVELS[level])
    return FilteringLogObserver(FileLogObserver(handle, format_event), [predicate])
