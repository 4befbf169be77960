"""The bell and desktop notifications for highlights and private messages.

`Notifier` is a line listener of the `ClientState`: for each line that
`alerts` (your nick or a highlight word, or a private message), it rings
the terminal bell and, if configured, shows a desktop notification with
``notify-send`` or a terminal escape (OSC 777 for rxvt/foot/kitty/WezTerm,
OSC 9 for iTerm2/Windows Terminal).  The terminal and the process runner
are injected; nothing here blocks.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable

from twisted.internet.interfaces import IReactorProcess
from twisted.internet.protocol import ProcessProtocol

from chat.client.model import Buffer, Line, alerts

#: Control characters (C0, DEL, C1) that must not reach a terminal escape.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Longest notification body, in characters.
BODY_LIMIT = 200


def _clean(text: str) -> str:
    return _CONTROL.sub(" ", text)[:BODY_LIMIT]


class Notifier:
    """Rings and notifies for alerting lines."""

    def __init__(
        self,
        bell: bool,
        desktop: str,
        write: Callable[[str], None],
        spawn: Callable[[list[str]], None],
        which: Callable[[str], str | None] = shutil.which,
    ) -> None:
        self.bell = bell
        self.write = write
        self.spawn = spawn
        if desktop == "auto":
            desktop = "notify-send" if which("notify-send") else "osc777"
        self.desktop = desktop

    def __call__(self, buffer: Buffer, line: Line) -> None:
        if not alerts(buffer, line):
            return
        if self.bell:
            self.write("\a")
        if self.desktop == "off":
            return
        who = line.nick or buffer.name
        title = _clean(
            f"{who} (private)"
            if buffer.kind == Buffer.QUERY
            else f"{who} in {buffer.name}"
        )
        body = _clean(line.text)
        if self.desktop == "notify-send":
            self.spawn(["notify-send", "--app-name=chat-client", "--", title, body])
        elif self.desktop == "osc777":
            self.write(f"\x1b]777;notify;{title.replace(';', ',')};{body}\x07")
        elif self.desktop == "osc9":
            self.write(f"\x1b]9;{title}: {body}\x07")


class _Quiet(ProcessProtocol):
    """Ignores a notifier process's output and exit."""


def spawner(reactor: IReactorProcess) -> Callable[[list[str]], None]:
    """Run a command without waiting for it (found on ``$PATH``)."""

    def spawn(argv: list[str]) -> None:
        path = shutil.which(argv[0])
        if path is not None:
            reactor.spawnProcess(_Quiet(), path, argv, env=dict(os.environ))

    return spawn
