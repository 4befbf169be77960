"""WHOWAS: what is remembered of users who left or changed nick.

The server keeps the newest ``limits.whowas_history`` entries of its own
users in memory (`ChatServer.whowas`); in a cluster the network's shared
state (`chat.network.SharedState`) also keeps them where every node can
read them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from chat.casemap import casefold


@dataclass(frozen=True, slots=True)
class WhowasEntry:
    """What WHOWAS remembers of a user who left or changed nick."""

    nick: str
    username: str
    host: str
    realname: str
    server: str
    left_at: int

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object (for a shared store)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WhowasEntry:
        """The entry `to_json` made; `ValueError` or `KeyError` if malformed."""
        return cls(
            nick=str(data["nick"]),
            username=str(data["username"]),
            host=str(data["host"]),
            realname=str(data["realname"]),
            server=str(data["server"]),
            left_at=int(data["left_at"]),
        )


def matching(
    entries: Iterable[WhowasEntry], nick: str, limit: int | None
) -> list[WhowasEntry]:
    """The entries (newest first) of *nick*, at most *limit* of them."""
    folded = casefold(nick)
    found: list[WhowasEntry] = []
    for entry in entries:
        if limit is not None and len(found) >= limit:
            break
        if casefold(entry.nick) == folded:
            found.append(entry)
    return found
