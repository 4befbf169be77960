"""Who watches which nick (MONITOR), kept by the server for the command."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat import numerics
from chat.casemap import casefold

if TYPE_CHECKING:
    from chat.protocol import ChatProtocol

#: The most nicks one connection may monitor (``MONITOR=`` in ISUPPORT).
MONITOR_LIMIT = 100


class Monitors:
    """Who watches which nick, both ways."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[ChatProtocol]] = {}
        self._watching: dict[ChatProtocol, dict[str, str]] = {}

    def watched_by(self, conn: ChatProtocol) -> dict[str, str]:
        """The nicks *conn* monitors: folded -> as given."""
        return self._watching.get(conn, {})

    def add(self, conn: ChatProtocol, nick: str) -> None:
        folded = casefold(nick)
        self._watching.setdefault(conn, {})[folded] = nick
        self._watchers.setdefault(folded, set()).add(conn)

    def remove(self, conn: ChatProtocol, nick: str) -> None:
        folded = casefold(nick)
        watching = self._watching.get(conn)
        if watching is not None:
            watching.pop(folded, None)
            if not watching:
                del self._watching[conn]
        watchers = self._watchers.get(folded)
        if watchers is not None:
            watchers.discard(conn)
            if not watchers:
                del self._watchers[folded]

    def clear(self, conn: ChatProtocol) -> None:
        """Forget everything *conn* monitors (MONITOR C, disconnect)."""
        for folded in list(self._watching.get(conn, {})):
            self.remove(conn, folded)

    def watchers_of(self, conn: ChatProtocol) -> set[ChatProtocol]:
        """The connections monitoring *conn*'s nick."""
        return self._watchers.get(conn.folded_nick, set())

    def online(self, conn: ChatProtocol) -> None:
        """*conn* now uses its nick: tell its watchers (730)."""
        for watcher in self._watchers.get(conn.folded_nick, ()):
            watcher.reply(numerics.RPL_MONONLINE, conn.hostmask)

    def offline(self, nick: str) -> None:
        """*nick* is no longer used: tell its watchers (731)."""
        for watcher in self._watchers.get(casefold(nick), ()):
            watcher.reply(numerics.RPL_MONOFFLINE, nick)
