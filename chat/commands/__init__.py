"""Command handlers, one module per family, in one table.

Each family module registers its handlers with the `command` decorator::

    @command("PING", min_params=1, registered=False)
    def handle_ping(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
        ...

`ChatProtocol.dispatch` checks registration and the parameter count before
calling a handler, so handlers only deal with the command's own rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chat.message import Message
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

Handler = Callable[["ChatProtocol", "ChatServer", "Message"], None]


@dataclass(frozen=True, slots=True)
class Command:
    """A table entry: the handler and what dispatch checks before it."""

    handler: Handler
    min_params: int = 0
    registered: bool = True


COMMANDS: dict[str, Command] = {}


def command(
    name: str, min_params: int = 0, registered: bool = True
) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler for *name*."""

    def register(handler: Handler) -> Handler:
        if name in COMMANDS:
            raise ValueError(f"command {name} registered twice")
        COMMANDS[name] = Command(handler, min_params, registered)
        return handler

    return register


# The families register themselves on import.
from chat.commands import (  # noqa: E402
    accounts,
    capabilities,
    channels,
    chathistory,
    ircv3,
    messaging,
    metadata,
    monitor,
    multiline,
    operators,
    queries,
    readmarker,
    redaction,
    registration,
    rename,
    search,
    server_info,
)

__all__ = [
    "COMMANDS",
    "Command",
    "accounts",
    "capabilities",
    "channels",
    "chathistory",
    "command",
    "ircv3",
    "messaging",
    "metadata",
    "monitor",
    "multiline",
    "operators",
    "queries",
    "readmarker",
    "redaction",
    "registration",
    "rename",
    "search",
    "server_info",
]
