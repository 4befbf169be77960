"""In-memory history: for tests, and servers that keep no data directory."""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Sequence

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime

from chat.history import (
    MESSAGE_COMMANDS,
    HistoryConfig,
    HistoryItem,
    Query,
    Search,
    Target,
    continuation_prefix,
    peer_nick,
    search_words,
    sender_nick,
)
from chat.history.select import Point, select


class MemoryHistory:
    """A `HistoryStore` keeping each target's latest messages in a deque."""

    def __init__(self, clock: IReactorTime, config: HistoryConfig | None = None):
        self.clock = clock
        self.config = config or HistoryConfig()
        # Items with their sequence number, given to them when read: adding
        # stays a tuple and an append, however busy the channel.
        self._targets: dict[str, deque[tuple[int, HistoryItem]]] = {}
        self._seq = 0

    def add(self, item: HistoryItem) -> None:
        self._seq += 1
        items = self._targets.get(item.target)
        if items is None:
            items = deque(maxlen=self.config.max_per_target)
            self._targets[item.target] = items
        items.append((self._seq, item))

    def stored(self) -> Deferred[None]:
        """Nothing here survives a crash: there is nothing to wait for."""
        return succeed(None)

    def _live(self, key: str) -> list[HistoryItem]:
        """The items of *key* still within the retention age."""
        items = self._targets.get(key)
        if not items:
            return []
        if self.config.max_age:
            oldest = self.clock.seconds() - self.config.max_age
            while items and items[0][1].time < oldest:
                items.popleft()
        return [dataclasses.replace(item, seq=seq) for seq, item in items]

    def query(self, query: Query) -> Deferred[list[HistoryItem]]:
        keys = query.keys or [
            key for key in self._targets if query.party in key.split(" ")
        ]
        items = sorted(
            (item for key in keys for item in self._live(key)),
            key=lambda item: item.seq,
        )
        by_msgid = {item.msgid: item for item in items}

        def resolve(msgid: str) -> Point | None:
            item = by_msgid.get(msgid)
            return Point(item.time, item.seq) if item is not None else None

        return succeed(select(items, query, resolve))

    def targets(
        self, keys: Sequence[str], party: str, start: float, end: float, limit: int
    ) -> Deferred[list[Target]]:
        low, high = min(start, end), max(start, end)
        found: list[Target] = []
        for key in list(self._targets):
            is_channel = key in keys
            if not is_channel and party not in key.split(" "):
                continue
            items = list(self._live(key))
            # Listed only if its latest message is inside the window.
            if items and low < items[-1].time < high:
                last = items[-1]
                peer = "" if is_channel else peer_nick(last, party)
                found.append(Target(key, last.time, peer))
        found.sort(key=lambda target: target.time)
        return succeed(found[:limit])

    def search(self, search: Search) -> Deferred[list[HistoryItem]]:
        keys = set(search.keys)
        if search.party:
            keys.update(k for k in self._targets if search.party in k.split(" "))
        words = search_words(search.text)
        low = search.after if search.after is not None else float("-inf")
        high = search.before if search.before is not None else float("inf")

        def matches(item: HistoryItem) -> bool:
            if item.command not in MESSAGE_COMMANDS or not low <= item.time <= high:
                return False
            if search.nick and sender_nick(item) != search.nick:
                return False
            if not words:
                return True
            found = set(search_words(item.params[-1] if item.params else ""))
            return all(word in found for word in words)

        items = sorted(
            (item for key in keys for item in self._live(key) if matches(item)),
            key=lambda item: item.seq,
        )
        if search.after is not None:
            return succeed(items[: search.limit])
        return succeed(items[-search.limit :] if search.limit else [])

    def redact(self, keys: Sequence[str], msgid: str) -> Deferred[bool]:
        prefix = continuation_prefix(msgid)
        removed = False
        for key in keys:
            items = self._targets.get(key)
            if not items:
                continue
            kept = [
                pair
                for pair in items
                if pair[1].msgid != msgid and not pair[1].msgid.startswith(prefix)
            ]
            if len(kept) != len(items):
                removed = True
                items.clear()
                items.extend(kept)
        return succeed(removed)

    def close(self) -> Deferred[None]:
        return succeed(None)
