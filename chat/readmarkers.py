"""Read markers (IRCv3 draft/read-marker): how far each user has read.

A marker is the time of the last message a user read in a target (a
channel or a nick, folded).  Markers of a logged-in user belong to the
account, so every connection of the account shares them; a guest's belong
to its connection and go with it.  A marker only ever moves forward.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from chat.casemap import casefold

if TYPE_CHECKING:
    from chat.protocol import ChatProtocol

#: The most markers one account or connection keeps (Ergo's number); the
#: one least recently set goes first.
MAX_MARKERS = 256

#: Called with (account, target, time) when an account's marker moves: the
#: server keeps it in the accounts store.
Saver = Callable[[str, str, float], object]


class ReadMarkers:
    """Markers by account, and by connection for guests."""

    def __init__(self, save: Saver | None = None) -> None:
        self._accounts: dict[str, dict[str, float]] = {}
        self._guests: weakref.WeakKeyDictionary[ChatProtocol, dict[str, float]] = (
            weakref.WeakKeyDictionary()
        )
        self._save = save

    def _markers(self, conn: ChatProtocol) -> dict[str, float]:
        if conn.account:
            return self._accounts.setdefault(casefold(conn.account), {})
        markers = self._guests.get(conn)
        if markers is None:
            markers = self._guests[conn] = {}
        return markers

    def get(self, conn: ChatProtocol, target: str) -> float | None:
        """The marker of *conn* in folded *target*, if any."""
        return self._markers(conn).get(target)

    def load(self, account: str, markers: dict[str, float]) -> None:
        """Take stored markers of *account* (newer ones in memory win)."""
        current = self._accounts.setdefault(casefold(account), {})
        for target, when in markers.items():
            if when > current.get(target, float("-inf")):
                current[target] = when

    def set(self, conn: ChatProtocol, target: str, when: float) -> float:
        """Move *conn*'s marker in *target* to *when* unless it is further;
        return the marker now in force."""
        markers = self._markers(conn)
        current = markers.get(target)
        if current is not None and current >= when:
            return current
        markers.pop(target, None)
        markers[target] = when
        if len(markers) > MAX_MARKERS:
            del markers[next(iter(markers))]
        if conn.account and self._save is not None:
            self._save(casefold(conn.account), target, when)
        return when
