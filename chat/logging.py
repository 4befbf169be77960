"""Log observers: twistd's readable text by default, or JSON lines.

With ``--log-format json`` the service gives twistd (as the application's
`ILogObserver` component) an observer writing one JSON object per line to
where twistd would have written its text: the ``--logfile`` (rotated by
size and on ``SIGUSR1``, like twistd's own) or stdout in the foreground.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from types import FrameType
from typing import IO, Any

from twisted.logger import ILogObserver, jsonFileLogObserver
from twisted.python.logfile import LogFile

#: twistd's log file when none is named and the server runs as a daemon.
DEFAULT_LOGFILE = "twistd.log"


def json_lines_observer(out: IO[Any]) -> ILogObserver:
    """An observer writing each event as one line of JSON to *out*."""
    return jsonFileLogObserver(out, recordSeparator="")


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
