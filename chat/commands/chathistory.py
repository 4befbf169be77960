"""CHATHISTORY (IRCv3 draft/chathistory and draft/event-playback).

``CHATHISTORY LATEST|BEFORE|AFTER|AROUND <target> <selector> <limit>``,
``CHATHISTORY BETWEEN <target> <selector> <selector> <limit>`` and
``CHATHISTORY TARGETS <timestamp> <timestamp> <limit>``.  A selector is
``msgid=<id>`` or ``timestamp=YYYY-MM-DDThh:mm:ss.sssZ`` (LATEST also takes
``*``).  Channel history is only for the channel's members; a private
conversation only for its two parties (see `chat.history.party`); the
target ``*`` is every private conversation of the user.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from twisted.logger import Logger
from twisted.python.failure import Failure

from chat.casemap import CHANTYPES, casefold
from chat.commands import command
from chat.history import (
    MESSAGE_COMMANDS,
    QUERY_LIMIT,
    SELECTIONS,
    HistoryItem,
    Query,
    Selector,
    Target,
    conversation_key,
    party,
)
from chat.labeled import Response, wrap_batch
from chat.message import Message
from chat.relay import Relay, format_server_time
from chat.storage import log_store_failure

if TYPE_CHECKING:
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

log = Logger()

#: What draft/event-playback clients see besides PRIVMSG and NOTICE.
EVENT_COMMANDS = MESSAGE_COMMANDS | {
    "TAGMSG",
    "JOIN",
    "PART",
    "QUIT",
    "NICK",
    "KICK",
    "TOPIC",
    "MODE",
}


class _BadParamsError(ValueError):
    """A parameter of the command is not valid; the message says which."""


def parse_timestamp(text: str) -> float:
    """``YYYY-MM-DDThh:mm:ss.sssZ`` as POSIX seconds."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _BadParamsError(f"Invalid timestamp {text}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def parse_selector(text: str, star: bool = False) -> Selector | None:
    """``msgid=...`` or ``timestamp=...`` (or ``*`` when *star*, as None)."""
    if star and text == "*":
        return None
    kind, sep, value = text.partition("=")
    if sep and value and kind == "msgid":
        return Selector(msgid=value)
    if sep and value and kind == "timestamp":
        return Selector(time=parse_timestamp(value))
    raise _BadParamsError(f"Invalid message reference {text}")


def parse_limit(args: tuple[str, ...], index: int) -> int:
    """The limit at *index*: missing, unreadable or too large means the
    server maximum (as Ergo does)."""
    text = args[index] if len(args) > index else ""
    if not text.isdigit() or not 0 < int(text) <= QUERY_LIMIT:
        return QUERY_LIMIT
    return int(text)


@command("CHATHISTORY", min_params=1)
def handle_chathistory(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    subcommand = msg.params[0].upper()
    args = msg.params[1:]
    needed = {"BETWEEN": 3, "TARGETS": 2}.get(subcommand, 2)
    if subcommand not in (*SELECTIONS, "TARGETS"):
        conn.fail("CHATHISTORY", "UNKNOWN_COMMAND", msg.params[0], "Unknown command")
        return
    if len(args) < needed:
        conn.fail("CHATHISTORY", "NEED_MORE_PARAMS", subcommand, "Missing parameters")
        return
    try:
        if subcommand == "TARGETS":
            _targets(conn, server, args)
        else:
            _select(conn, server, subcommand, args)
    except _BadParamsError as error:
        conn.fail("CHATHISTORY", "INVALID_PARAMS", subcommand, str(error))


def readable_keys(
    conn: ChatProtocol, server: ChatServer, target: str
) -> tuple[str, ...]:
    """The stored targets *conn* may read as *target*; empty if none."""
    if target == "*":
        return ()
    if target[:1] in CHANTYPES:
        channel = server.find_channel(target)
        if channel is None or conn not in channel.members:
            return ()
        return (channel.folded,)
    me = party(conn)
    others = {"n:" + casefold(target), "a:" + casefold(target)}
    user = server.find_user(target)
    if user is not None:
        others.add(party(user))
    return tuple(sorted(conversation_key(me, other) for other in others))


def _select(
    conn: ChatProtocol, server: ChatServer, subcommand: str, args: tuple[str, ...]
) -> None:
    target = args[0]
    if subcommand == "BEFORE" and args[1] == "*":
        subcommand = "LATEST"  # some clients (Kiwi) say BEFORE * for LATEST *
    start = parse_selector(args[1], star=subcommand == "LATEST")
    end = parse_selector(args[2]) if subcommand == "BETWEEN" else None
    limit = parse_limit(args, 3 if subcommand == "BETWEEN" else 2)
    keys = readable_keys(conn, server, target)
    if not keys and target != "*":
        conn.fail(
            "CHATHISTORY",
            "INVALID_TARGET",
            subcommand,
            target,
            "Messages could not be retrieved",
        )
        return
    channel = server.find_channel(target) if target[:1] in CHANTYPES else None
    name = channel.name if channel is not None else target
    playback = "draft/event-playback" in conn.caps and "message-tags" in conn.caps
    query = Query(
        keys,
        subcommand,
        start,
        limit,
        end,
        EVENT_COMMANDS if playback else MESSAGE_COMMANDS,
        party(conn),
    )
    response = conn.responder()
    found = server.history.query(query)
    found.addCallback(_send_items, conn, server, response, name)
    found.addErrback(_failed, conn, response, subcommand, target)


def replay_bytes(conn: ChatProtocol, item: HistoryItem) -> bytes:
    """*item* as *conn* would have received it, with its original msgid."""
    tags = {key: value for key, value in item.tags.items() if key.startswith("+")}
    relay = Relay(
        Message(item.command, item.params, item.source),
        item.time,
        msgid=item.msgid,
        client_tags=tags or None,
        account=item.account,
        bot="bot" in item.tags,
    )
    return relay.bytes_for(conn)


def _send_items(
    items: list[HistoryItem],
    conn: ChatProtocol,
    server: ChatServer,
    response: Response,
    name: str,
) -> None:
    lines = [replay_bytes(conn, item) for item in items]
    _send_batch(conn, server, response, "chathistory", (name,), lines)


def _send_batch(
    conn: ChatProtocol,
    server: ChatServer,
    response: Response,
    kind: str,
    params: tuple[str, ...],
    lines: list[bytes],
) -> None:
    """*lines* in a *kind* batch if the client takes batches; then finish."""
    if "batch" in conn.caps:
        lines = wrap_batch(server.name, kind, params, lines)
    for line in lines:
        response.write(line)
    response.finish()


def _failed(
    failure: Failure,
    conn: ChatProtocol,
    response: Response,
    subcommand: str,
    target: str,
) -> None:
    log_store_failure(
        log, "CHATHISTORY {subcommand} failed", failure, subcommand=subcommand
    )
    response.send(
        Message(
            "FAIL",
            (
                "CHATHISTORY",
                "MESSAGE_ERROR",
                subcommand,
                target,
                "Messages could not be retrieved",
            ),
            conn.server.name,
        )
    )
    response.finish()


def _targets(conn: ChatProtocol, server: ChatServer, args: tuple[str, ...]) -> None:
    start, end = parse_selector(args[0]), parse_selector(args[1])
    if start is None or end is None or start.time is None or end.time is None:
        raise _BadParamsError("TARGETS takes two timestamps")
    limit = parse_limit(args, 2)
    channels = [channel.folded for channel in conn.channels.values()]
    response = conn.responder()
    found = server.history.targets(channels, party(conn), start.time, end.time, limit)
    found.addCallback(_send_targets, conn, server, response)
    found.addErrback(_failed, conn, response, "TARGETS", "*")


def _send_targets(
    targets: list[Target], conn: ChatProtocol, server: ChatServer, response: Response
) -> None:
    lines: list[bytes] = []
    for target in targets:
        channel = server.channels.get(target.key)
        name = channel.name if channel is not None else target.peer
        stamp = format_server_time(target.time)
        lines.append(
            Message("CHATHISTORY", ("TARGETS", name, stamp), server.name).to_bytes()
        )
    _send_batch(conn, server, response, "draft/chathistory-targets", (), lines)
