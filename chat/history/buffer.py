"""A bounded buffer of history writes that wait for the database."""

from __future__ import annotations

import itertools
from collections import deque

from chat.history import HistoryItem


class WriteBuffer:
    """History items waiting to be written, oldest first, at most *limit*.

    When full, the oldest items make room and are counted in `dropped`.
    Items taken for a write that failed are put back in their place.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        #: Items forgotten because the buffer was full.
        self.dropped = 0
        self._items: deque[tuple[int, HistoryItem]] = deque()
        self._numbers = itertools.count()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: HistoryItem) -> None:
        """Queue *item* after the others."""
        self._items.append((next(self._numbers), item))
        self._bound()

    def take(self) -> list[tuple[int, HistoryItem]]:
        """Every waiting item (with its place), leaving the buffer empty."""
        items = list(self._items)
        self._items.clear()
        return items

    def put_back(self, items: list[tuple[int, HistoryItem]]) -> None:
        """Return *items* from `take` whose write failed, in their place."""
        self._items = deque(sorted([*items, *self._items], key=lambda pair: pair[0]))
        self._bound()

    def _bound(self) -> None:
        while len(self._items) > self.limit:
            self._items.popleft()
            self.dropped += 1
