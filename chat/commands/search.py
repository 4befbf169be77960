"""SEARCH (soju.im/search): full-text search over the history one may read.

``SEARCH <attributes>``, the attributes written like message tags:
``in`` (a channel or nick; without it, every joined channel and private
conversation), ``text`` (every word must match), ``from`` (the sender's
nick), ``after`` and ``before`` (server-time timestamps, inclusive) and
``limit`` (at most `QUERY_LIMIT`).  The results come oldest first in a
``soju.im/search`` batch.  A channel is searched only by its members and a
conversation only by its two parties, as CHATHISTORY reads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.logger import Logger
from twisted.python.failure import Failure

from chat.casemap import casefold
from chat.commands import command
from chat.commands.chathistory import parse_timestamp, readable_keys, replay_bytes
from chat.history import QUERY_LIMIT, HistoryItem, Search, party
from chat.labeled import wrap_batch
from chat.message import Message, unescape_tag_value

if TYPE_CHECKING:
    from chat.labeled import Response
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

log = Logger()

CAP = "soju.im/search"
BATCH_TYPE = "soju.im/search"


class _InvalidError(ValueError):
    """An attribute is not valid: its name, and why."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__(text)
        self.name = name
        self.text = text


def parse_attributes(text: str) -> dict[str, str]:
    """``key=value;...`` with message-tag escapes, as a dict."""
    attributes: dict[str, str] = {}
    for item in text.split(";"):
        if item:
            key, _, value = item.partition("=")
            attributes[key] = unescape_tag_value(value)
    return attributes


def _search(
    conn: ChatProtocol, server: ChatServer, attributes: dict[str, str]
) -> Search:
    """The search *attributes* ask for, limited to what *conn* may read."""
    limit = QUERY_LIMIT
    after = before = None
    for name in ("after", "before"):
        if name in attributes:
            try:
                when = parse_timestamp(attributes[name])
            except ValueError:
                raise _InvalidError(name, "Invalid criteria") from None
            after, before = (when, before) if name == "after" else (after, when)
    if "limit" in attributes:
        text = attributes["limit"]
        if not text.isdigit() or int(text) <= 0:
            raise _InvalidError("limit", "Invalid limit")
        limit = min(int(text), QUERY_LIMIT)
    target = attributes.get("in", "")
    if target:
        keys = readable_keys(conn, server, target)
        if not keys:
            raise _InvalidError("in", "Messages could not be retrieved")
        who = ""
    else:
        keys = tuple(channel.folded for channel in conn.channels.values())
        who = party(conn)
    return Search(
        keys,
        limit,
        party=who,
        text=attributes.get("text", ""),
        nick=casefold(attributes.get("from", "")),
        after=after,
        before=before,
    )


@command("SEARCH", min_params=1)
def handle_search(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``SEARCH <attributes>``."""
    try:
        search = _search(conn, server, parse_attributes(msg.params[0]))
    except _InvalidError as error:
        conn.fail("SEARCH", "INVALID_PARAMS", error.name, error.text)
        return
    response = conn.responder()
    found = server.history.search(search)
    found.addCallback(_send_results, conn, server, response)
    found.addErrback(_failed, conn, server, response)


def _send_results(
    items: list[HistoryItem],
    conn: ChatProtocol,
    server: ChatServer,
    response: Response,
) -> None:
    lines = [replay_bytes(conn, item) for item in items]
    if "batch" in conn.caps:
        lines = wrap_batch(server.name, BATCH_TYPE, (), lines)
    for line in lines:
        response.write(line)
    response.finish()


def _failed(
    failure: Failure, conn: ChatProtocol, server: ChatServer, response: Response
) -> None:
    log.failure("SEARCH failed", failure)
    response.send(
        Message(
            "FAIL",
            ("SEARCH", "INTERNAL_ERROR", "Messages could not be retrieved"),
            server.name,
        )
    )
    response.finish()
