"""Conversation logs: each buffer's lines appended to a file on disk.

Off by default (``[logs] enabled = true`` turns it on).  One file per
network and buffer, ``<state dir>/logs/<host>/<buffer>.log``, readable by
you only, rotated when it reaches ``max_bytes`` with ``keep`` old files
(``.1`` newest).  What you send to services (NickServ and the like) is
logged as its first word only, so passwords never reach the disk.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from twisted.python.logfile import LogFile

from chat.client.model import Buffer, Kind, Line

#: Characters kept in file names; others become ``_``.
_UNSAFE = re.compile(r"[^\w#&+.,!-]")


def file_name(name: str) -> str:
    """A safe file name for buffer or network *name* (the server buffer aside)."""
    safe = _UNSAFE.sub("_", name.lower()).lstrip(".")
    return safe or "_"


def _is_service(buffer: Buffer) -> bool:
    return buffer.kind == Buffer.QUERY and buffer.name.lower().endswith("serv")


def log_text(buffer: Buffer, line: Line) -> str:
    """One line of a log file, without the time."""
    nick = line.nick or ""
    text = line.text
    if line.own and _is_service(buffer):
        text = f"{text.split(' ', 1)[0]} <hidden>"
    if line.kind == Kind.MESSAGE:
        return f"<{nick}> {text}"
    if line.kind == Kind.ACTION:
        return f" * {nick} {text}"
    if line.kind == Kind.NOTICE:
        return f"-{nick}- {text}"
    if line.kind == Kind.ERROR:
        return f"!! {text}"
    return f"-- {text}"


class ConversationLogs:
    """A line listener writing shown lines to per-buffer files."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        keep: int,
        on_error: Callable[[str], None],
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.keep = keep
        self.on_error = on_error
        self.failed = False
        self._files: dict[str, LogFile] = {}

    def path_for(self, buffer: Buffer) -> Path:
        # "-server" cannot be a nick or a channel.
        name = "-server" if buffer.kind == Buffer.SERVER else file_name(buffer.name)
        return self.directory / f"{name}.log"

    def __call__(self, buffer: Buffer, line: Line) -> None:
        if self.failed or line.history:
            return
        path = self.path_for(buffer)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(line.time))
        try:
            log = self._files.get(path.name)
            if log is None:
                self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
                log = LogFile(
                    path.name,
                    str(self.directory),
                    rotateLength=self.max_bytes,
                    defaultMode=0o600,
                    maxRotatedFiles=self.keep,
                )
                self._files[path.name] = log
            log.write(f"{stamp} {log_text(buffer, line)}\n")
            log.flush()
        except OSError as error:
            self.failed = True
            self.on_error(
                f"Conversation logging stopped: cannot write {path}: {error.strerror}"
            )

    def close(self) -> None:
        for log in self._files.values():
            log.close()
        self._files.clear()
