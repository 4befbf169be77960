"""Log observers: twistd's readable text by default, or JSON lines.

With ``--log-format json`` the service gives twistd (as the application's
`ILogObserver` component) an observer writing one JSON object per line to
where twistd would have written its text: the ``--logfile`` (rotated by
size and on ``SIGUSR1``, like twistd's own) or stdout in the foreground.
Each object (`json_record`) holds ``time`` (UTC, ISO 8601), ``level``,
``event`` (the stable name of a `chat.events` event, else ``log``),
``system`` (the logger's namespace), ``message`` (the text line), a
``traceback`` for failures, and the event's own fields; Twisted's internal
keys (``log_logger``, ``log_source``...) and the text-only helpers of
`chat.events` (``_shown``...) are left out.
"""

from __future__ import annotations

import datetime
import json
import signal
import sys
from collections.abc import Mapping
from types import FrameType
from typing import IO, Any

from twisted.logger import FileLogObserver, ILogObserver, LogEvent, formatEvent
from twisted.python.failure import Failure
from twisted.python.logfile import LogFile

#: twistd's log file when none is named and the server runs as a daemon.
DEFAULT_LOGFILE = "twistd.log"


#: Keys of the legacy ``twisted.python.log`` API, carried by its events
#: (which all have ``isError``).
_LEGACY_KEYS = frozenset(
    ("message", "isError", "printed", "why", "failure", "format", "system", "time")
)
_SCALARS = (str, int, float, bool, type(None))


def _plain(value: object) -> object:
    """*value* if JSON has it (scalars and lists of them), else its text."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, _SCALARS) for v in value):
        return list(value)
    return str(value)


def json_record(event: LogEvent) -> dict[str, object]:
    """The clean JSON object of one log *event* (see the module docstring)."""
    when = datetime.datetime.fromtimestamp(event.get("log_time", 0.0), datetime.UTC)
    level = event.get("log_level")
    record: dict[str, object] = {
        "time": when.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{when.microsecond // 1000:03d}Z",
        "level": getattr(level, "name", "info"),
        "event": str(event.get("event", "log")),
        "system": event.get("log_namespace") or event.get("log_system") or "-",
        "message": formatEvent(event),
    }
    failure = event.get("log_failure")
    if isinstance(failure, Failure):
        record["traceback"] = failure.getTraceback()
    for key, value in event.items():
        if key.startswith(("log_", "_")) or key in record:
            continue
        if "isError" in event and key in _LEGACY_KEYS:
            continue
        record[key] = _plain(value)
    return record


def json_lines_observer(out: IO[Any]) -> ILogObserver:
    """An observer writing each event as one line of JSON to *out*."""
    return FileLogObserver(
        out, lambda event: json.dumps(json_record(event), ensure_ascii=False) + "\n"
    )


def twistd_destination(twistd_options: Mapping[str, Any]) -> IO[Any]:
    """The file twistd would log to with *twistd_options*."""
    logfile = twistd_options.get("logfile") or ""
    if logfile == "-" or (twistd_options.get("nodaemon") and not logfile):
        return sys.stdout
    destination = LogFile.fromFullPath(logfile or DEFAULT_LOGFILE)
    if not signal.getsignal(signal.SIGUSR1):

        def rotate(signum: int, frame: FrameType | None) -> None:
            from twisted.internet import reactor

            reactor.callFromThread(destination.rotate)  # type: ignore[attr-defined]

        signal.signal(signal.SIGUSR1, rotate)
    return destination


def observer_for(
    log_format: str, twistd_options: Mapping[str, Any] | None
) -> ILogObserver | None:
    """The observer twistd should use, or None to keep twistd's text log.

    Only twistd (whose options have ``logfile``) honours the choice; other
    runners, like ``python -m twisted``, have their own ``--log-format``.
    """
    if log_format != "json" or twistd_options is None:
        return None
    if "logfile" not in twistd_options or twistd_options.get("syslog"):
        return None
    return json_lines_observer(twistd_destination(twistd_options))
