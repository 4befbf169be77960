"""CHATHISTORY selection rules, shared by the history stores.

A selector becomes a `Point`: a message ID names a position in the stored
order (its ``seq``), a timestamp a point in time.  Every store answers the
same questions about points: `select` is the in-memory answer, and
`select_rows` the one the SQL stores share, turning points into bounds that
each writes as its own ``WHERE`` clauses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chat.history import HistoryItem, Query, Selector


@dataclass(frozen=True, slots=True)
class Point:
    """A position in history: a stored message (*seq*) or a time."""

    time: float
    seq: int | None = None

    def is_after(self, item: HistoryItem) -> bool:
        """Whether *item* comes strictly before this point."""
        if self.seq is not None:
            return item.seq < self.seq
        return item.time < self.time

    def is_before(self, item: HistoryItem) -> bool:
        """Whether *item* comes strictly after this point."""
        if self.seq is not None:
            return item.seq > self.seq
        return item.time > self.time

    def precedes(self, other: Point) -> bool:
        """Whether this point comes before *other* (for BETWEEN's direction)."""
        if self.seq is not None and other.seq is not None:
            return self.seq <= other.seq
        return self.time <= other.time


Resolver = Callable[[str], Point | None]


def split_around(limit: int) -> tuple[int, int]:
    """How many messages AROUND takes before and from its point."""
    before = limit // 2
    return before, limit - before


def select(
    items: Sequence[HistoryItem], query: Query, resolve: Resolver
) -> list[HistoryItem]:
    """Apply *query* to *items* (in stored order); oldest first.

    *resolve* finds the point of a msgid; an unknown msgid selects nothing.
    """
    start = _point(query.start, resolve) if query.start is not None else None
    if query.start is not None and start is None:
        return []
    items = [item for item in items if item.command in query.commands]
    limit = query.limit
    kind = query.subcommand
    if kind == "LATEST":
        chosen = [i for i in items if start is None or start.is_before(i)]
        return chosen[-limit:]
    assert start is not None
    if kind == "BEFORE":
        return [i for i in items if start.is_after(i)][-limit:]
    if kind == "AFTER":
        return [i for i in items if start.is_before(i)][:limit]
    if kind == "AROUND":
        before_count, rest = split_around(limit)
        before = [i for i in items if start.is_after(i)]
        before = before[-before_count:] if before_count else []
        return before + [i for i in items if not start.is_after(i)][:rest]
    end = _point(query.end, resolve) if query.end is not None else None
    if end is None:
        return []
    if start.precedes(end):
        return [i for i in items if start.is_before(i) and end.is_after(i)][:limit]
    return [i for i in items if start.is_after(i) and end.is_before(i)][-limit:]


def _point(selector: Selector, resolve: Resolver) -> Point | None:
    if selector.msgid is not None:
        return resolve(selector.msgid)
    return Point(selector.time or 0.0)


#: Fetches stored items between bounds, each ``(op, point)`` with op one of
#: ``<``, ``>``, ``>=``: (bounds, limit, newest first) -> oldest first.
Rows = Callable[[list[tuple[str, Point]], int, bool], list[HistoryItem]]


def select_rows(
    query: Query, point: Callable[[Selector], Point | None], rows: Rows
) -> list[HistoryItem]:
    """What *query* selects, from a store that resolves selectors to points
    (*point*: None for an unknown msgid) and fetches *rows* between bounds."""
    start = point(query.start) if query.start is not None else None
    if query.start is not None and start is None:
        return []
    kind, limit = query.subcommand, query.limit
    if kind == "LATEST":
        return rows([(">", start)] if start else [], limit, True)
    assert start is not None
    if kind == "BEFORE":
        return rows([("<", start)], limit, True)
    if kind == "AFTER":
        return rows([(">", start)], limit, False)
    if kind == "AROUND":
        before_count, rest = split_around(limit)
        before = rows([("<", start)], before_count, True) if before_count else []
        return before + rows([(">=", start)], rest, False)
    end = point(query.end) if query.end is not None else None
    if end is None:
        return []
    if start.precedes(end):
        return rows([(">", start), ("<", end)], limit, False)
    return rows([("<", start), (">", end)], limit, True)
