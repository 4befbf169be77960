"""METADATA (IRCv3 draft/metadata-2): display names, avatars, statuses.

``METADATA <target> GET <key>...|LIST|SET <key> [:<value>]|CLEAR|SYNC`` on
a user (``*`` is yourself) or a channel, and ``METADATA * SUB|UNSUB <key>...``
or ``SUBS`` for subscriptions.  Replies are 761 (a value) and 766 (no
value), several of them in a ``metadata`` batch; subscribers that share a
channel with a user, or monitor it, hear of its changes, and channel
members of the channel's.  Users change their own metadata, channel
operators their channel's, IRC operators anyone's; a channel's metadata is
for its members.  Before registration a client may set its own (the
``before-connect`` value), which the welcome burst shows back.  Behaviour
follows Ergo's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from chat import numerics
from chat.casemap import CHANTYPES
from chat.commands import command
from chat.labeled import wrap_batch
from chat.message import Message
from chat.metadata import (
    MAX_KEYS,
    MAX_SUBS,
    MetadataLimitError,
    has_metadata,
    set_value,
    valid_key,
    value_problem,
)
from chat.router import Audience

if TYPE_CHECKING:
    from chat.channel import Channel
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

#: Room for the keys of one 770-772 line.
_LINE_BUDGET = 400


def _fail(conn: ChatProtocol, code: str, *params: str) -> None:
    conn.fail("METADATA", code, *params)


def _value_line(
    server: ChatServer, nick: str, target: str, key: str, value: str
) -> bytes:
    return Message(
        numerics.RPL_KEYVALUE, (nick, target, key, "*", value), server.name
    ).to_bytes()


def _unset_line(
    server: ChatServer, nick: str, target: str, key: str, text: str
) -> bytes:
    return Message(
        numerics.RPL_KEYNOTSET, (nick, target, key, text), server.name
    ).to_bytes()


def _send_batch(
    conn: ChatProtocol, server: ChatServer, params: tuple[str, ...], lines: list[bytes]
) -> None:
    """*lines* in a ``metadata`` batch if the client takes batches."""
    if "batch" in conn.caps:
        lines = wrap_batch(server.name, "metadata", params, lines)
    for line in lines:
        conn.write(line)


def _subscribed(values: dict[str, str], subs: set[str]) -> Iterable[tuple[str, str]]:
    return ((key, value) for key, value in values.items() if key in subs)


@command("METADATA", min_params=2, registered=False)
def handle_metadata(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``METADATA <target> <subcommand> [<params>...]``."""
    target, subcommand = msg.params[0], msg.params[1].upper()
    args = msg.params[2:]
    if subcommand in ("SET", "GET", "SUB", "UNSUB") and not args:
        conn.reply(numerics.ERR_NEEDMOREPARAMS, "METADATA", "Not enough parameters")
        return
    if subcommand in ("SUB", "UNSUB", "SUBS"):
        _subscriptions(conn, server, subcommand, args)
        return
    if subcommand not in ("SET", "GET", "LIST", "CLEAR", "SYNC"):
        _fail(conn, "INVALID_PARAMS", msg.params[1], "Invalid subcommand")
        return
    if not conn.registered:
        _before_registration(conn, server, target, subcommand, args)
        return
    if target == "*":
        target = conn.nick
    channel: Channel | None = None
    user: ChatProtocol | None = None
    if target[:1] in CHANTYPES:
        channel = server.find_channel(target)
    else:
        user = server.find_user(target)
    if channel is None and user is None:
        _fail(conn, "INVALID_TARGET", target, "Invalid metadata target")
        return
    oper = "o" in conn.modes
    if channel is not None:
        name, values = channel.name, channel.metadata
        may_see = oper or conn in channel.members
        may_edit = oper or channel.is_operator(conn)
    else:
        assert user is not None
        name, values = user.nick, user.metadata
        may_see, may_edit = True, oper or user is conn
    if subcommand in ("SET", "CLEAR") and not may_edit:
        key = args[0] if subcommand == "SET" else "*"
        _fail(conn, "KEY_NO_PERMISSION", name, key, "You do not have permission")
        return
    if subcommand in ("GET", "LIST", "SYNC") and not may_see:
        _fail(conn, "KEY_NO_PERMISSION", name, "*", "You do not have permission")
        return
    if subcommand == "SET":
        _set(conn, server, name, values, args, channel, user)
    elif subcommand == "CLEAR":
        cleared = dict(values)
        values.clear()
        lines = [
            _unset_line(server, conn.nick, name, key, "Metadata value cleared")
            for key in cleared
        ]
        _send_batch(conn, server, (name,), lines)
        for key in cleared:
            _notify(server, conn, name, key, None, channel, user)
    elif subcommand == "GET":
        lines = []
        for key in args:
            if not valid_key(key):
                lines.append(
                    Message(
                        "FAIL",
                        ("METADATA", "INVALID_KEY", key, "Invalid key name"),
                        server.name,
                    ).to_bytes()
                )
            elif key in values:
                lines.append(_value_line(server, conn.nick, name, key, values[key]))
            else:
                lines.append(
                    _unset_line(server, conn.nick, name, key, "Key is not set")
                )
        _send_batch(conn, server, (name,), lines)
    elif subcommand == "LIST":
        lines = [
            _value_line(server, conn.nick, name, key, value)
            for key, value in values.items()
        ]
        _send_batch(conn, server, (name,), lines)
    elif channel is not None:
        sync_channel(conn, server, channel)
    else:
        assert user is not None
        lines = [
            _value_line(server, "*", name, key, value)
            for key, value in _subscribed(values, conn.metadata_subs)
        ]
        _send_batch(conn, server, (name,), lines)


def _set(
    conn: ChatProtocol,
    server: ChatServer,
    name: str,
    values: dict[str, str],
    args: tuple[str, ...],
    channel: Channel | None,
    user: ChatProtocol | None,
) -> None:
    key = args[0]
    if not valid_key(key):
        _fail(conn, "INVALID_KEY", key, "Invalid key name")
        return
    value = args[1] if len(args) > 1 else ""
    if not value:
        changed = values.pop(key, None) is not None
        conn.reply(numerics.RPL_KEYNOTSET, name, key, "Key deleted")
        if changed:
            _notify(server, conn, name, key, None, channel, user)
        return
    problem = value_problem(key, value)
    if problem is not None:
        _fail(conn, "INVALID_VALUE", key, problem)
        return
    try:
        changed = set_value(values, key, value)
    except MetadataLimitError:
        _fail(conn, "LIMIT_REACHED", name, str(MAX_KEYS), "Too many metadata keys")
        return
    conn.reply(numerics.RPL_KEYVALUE, name, key, "*", value)
    if changed:
        _notify(server, conn, name, key, value, channel, user)


def _notify(
    server: ChatServer,
    conn: ChatProtocol,
    name: str,
    key: str,
    value: str | None,
    channel: Channel | None,
    user: ChatProtocol | None,
) -> None:
    """Tell the subscribers who see *name* that *key* changed."""
    if user is not None and not user.registered:
        return  # nobody sees it yet: the welcome burst tells
    if channel is not None:
        audience = server.router.recipients(Audience.channel(channel))
    else:
        assert user is not None
        audience = [
            *server.router.recipients(Audience.peers(user, include_self=True)),
            *server.monitors.watchers_of(user),
        ]
    if value is None:
        line = _unset_line(server, "*", name, key, "Key deleted")
    else:
        line = _value_line(server, "*", name, key, value)
    for member in dict.fromkeys(audience):
        if (
            member is not conn
            and key in member.metadata_subs
            and has_metadata(member.caps)
        ):
            server.router.write(member, line)


def _before_registration(
    conn: ChatProtocol,
    server: ChatServer,
    target: str,
    subcommand: str,
    args: tuple[str, ...],
) -> None:
    """Before registration a client may only read and set its own metadata."""
    if target != "*":
        _fail(
            conn,
            "KEY_NO_PERMISSION",
            target,
            "*",
            "You can only modify your own metadata before registration",
        )
        return
    if subcommand == "SYNC":
        conn.reply(numerics.RPL_METADATASYNCLATER, "*", "60", "Try again later")
    elif subcommand == "SET":
        _set(conn, server, "*", conn.metadata, args, None, conn)
    elif subcommand == "GET":
        lines = [
            _value_line(server, "*", "*", key, conn.metadata[key])
            if key in conn.metadata
            else _unset_line(server, "*", "*", key, "Key is not set")
            for key in args
        ]
        _send_batch(conn, server, ("*",), lines)
    else:
        lines = [
            _value_line(server, "*", "*", key, value)
            for key, value in conn.metadata.items()
        ]
        if subcommand == "CLEAR":
            conn.metadata.clear()
        _send_batch(conn, server, ("*",), lines)


def _subscriptions(
    conn: ChatProtocol, server: ChatServer, subcommand: str, keys: tuple[str, ...]
) -> None:
    """SUB, UNSUB and SUBS: this connection's subscriptions."""
    subs = conn.metadata_subs
    if subcommand == "SUBS":
        lines = [
            Message(
                numerics.RPL_METADATASUBS, (conn.nick, *chunk), server.name
            ).to_bytes()
            for chunk in _chunks(sorted(subs))
        ]
        if "batch" in conn.caps:
            lines = wrap_batch(server.name, "metadata-subs", (), lines)
        for line in lines:
            conn.write(line)
        return
    if subcommand == "UNSUB":
        removed = [key for key in dict.fromkeys(keys) if key in subs]
        subs.difference_update(removed)
        for chunk in _chunks(removed):
            conn.reply(numerics.RPL_METADATAUNSUBOK, *chunk)
        return
    for key in keys:
        if not valid_key(key):
            _fail(conn, "INVALID_KEY", key, "Invalid key name")
            return
    added: list[str] = []
    for key in dict.fromkeys(keys):
        if key in subs:
            continue
        if len(subs) >= MAX_SUBS:
            _fail(conn, "LIMIT_REACHED", key, str(MAX_SUBS), "Too many subscriptions")
            break
        subs.add(key)
        added.append(key)
    for chunk in _chunks(added):
        conn.reply(numerics.RPL_METADATASUBOK, *chunk)
    if conn.registered and added:
        conn.reply(numerics.RPL_METADATASYNCLATER, "*ALL", "0", "Try again later")


def _chunks(keys: list[str]) -> list[list[str]]:
    """*keys* in groups that fit on one reply line."""
    chunks: list[list[str]] = []
    size = _LINE_BUDGET
    for key in keys:
        if size + len(key) + 1 > _LINE_BUDGET:
            chunks.append([])
            size = 0
        chunks[-1].append(key)
        size += len(key) + 1
    return chunks


def sync_channel(conn: ChatProtocol, server: ChatServer, channel: Channel) -> None:
    """The subscribed metadata of *channel* and its members, in a batch."""
    subs = conn.metadata_subs
    lines = [
        _value_line(server, "*", channel.name, key, value)
        for key, value in _subscribed(channel.metadata, subs)
    ]
    for member in channel.members:
        lines.extend(
            _value_line(server, "*", member.nick, key, value)
            for key, value in _subscribed(member.metadata, subs)
        )
    _send_batch(conn, server, (channel.name,), lines)


def send_metadata_on_join(
    conn: ChatProtocol, server: ChatServer, channel: Channel
) -> None:
    """JOIN: what *conn* subscribed to, of *channel* and its members."""
    if has_metadata(conn.caps):
        sync_channel(conn, server, channel)


def send_metadata_on_welcome(conn: ChatProtocol, server: ChatServer) -> None:
    """The welcome burst: the metadata *conn* set before registering, which
    its monitors that subscribed hear of too."""
    if not conn.metadata:
        return
    if has_metadata(conn.caps):
        lines = [
            _value_line(server, "*", conn.nick, key, value)
            for key, value in conn.metadata.items()
        ]
        _send_batch(conn, server, (conn.nick,), lines)
    for key, value in conn.metadata.items():
        _notify(server, conn, conn.nick, key, value, None, conn)


def send_whois_metadata(
    conn: ChatProtocol, server: ChatServer, user: ChatProtocol
) -> None:
    """WHOIS: 760 for each of *user*'s keys, to metadata clients."""
    if has_metadata(conn.caps):
        for key, value in user.metadata.items():
            conn.reply(numerics.RPL_WHOISKEYVALUE, user.nick, key, "*", value)
