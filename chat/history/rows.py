"""How a `HistoryItem` is one row of the SQL stores (SQLite, PostgreSQL).

The two stores share the ``history`` table's columns; only their SQL
placeholders differ (``?`` and ``%s``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii
from typing import Any

from chat.history import HistoryItem
from chat.history.select import Point

#: The columns every SELECT reads, in the order `row_item` takes them.
COLUMNS = (
    "seq, target, msgid, time, command, source, params, account, tags, "
    "sender, recipient"
)
#: The columns an INSERT writes, in the order `item_row` gives them.
INSERT_COLUMNS = (
    "target, msgid, time, command, source, params, account, tags, sender, recipient"
)


def row_item(row: Sequence[Any]) -> HistoryItem:
    """The item of a row read as `COLUMNS`."""
    seq, target, msgid, time, command, source, params, account, tags = row[:9]
    return HistoryItem(
        target=target,
        msgid=msgid,
        time=time,
        command=command,
        source=source,
        params=tuple(json.loads(params)),
        account=account,
        tags=json.loads(tags),
        sender=row[9],
        recipient=row[10],
        seq=seq,
    )


def params_json(params: tuple[str, ...]) -> str:
    """``json.dumps(params)``, the same text, without the encoder set-up that
    costs ``json.dumps`` more than the encoding of a message's parameters."""
    return "[" + ", ".join(map(encode_basestring_ascii, params)) + "]"


def item_row(item: HistoryItem) -> tuple[Any, ...]:
    """The values of *item* for `INSERT_COLUMNS`."""
    return (
        item.target,
        item.msgid,
        item.time,
        item.command,
        item.source,
        params_json(item.params),
        item.account,
        json.dumps(dict(item.tags)) if item.tags else "{}",
        item.sender,
        item.recipient,
    )


def bound(point: Point, op: str, mark: str) -> tuple[str, float | int]:
    """A WHERE fragment, with placeholder *mark*: rows *op* (``<``, ``>``,
    ``>=``) *point*, by position when it is a message, else by time."""
    if point.seq is not None:
        return f"seq {op} {mark}", point.seq
    return f"time {op} {mark}", point.time
