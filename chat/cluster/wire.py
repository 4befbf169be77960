"""What crosses between nodes: relays, channel snapshots, routed commands.

Everything is JSON.  A relay keeps its msgid, time and tags, so the node
that delivers it serializes exactly what the node that made it would have.
A channel snapshot is a channel's whole state, sent by its home node after
every change; other nodes replace their copy with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chat.casemap import CHANTYPES, casefold
from chat.channel import Channel, ListEntry
from chat.message import Message
from chat.multiline import MultilineRelay
from chat.relay import Relay

if TYPE_CHECKING:
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

#: Commands that change a channel's state: its home sends a snapshot after.
STATE_COMMANDS = frozenset({"JOIN", "PART", "KICK", "MODE", "TOPIC", "INVITE"})


def message_json(message: Message) -> list[Any]:
    return [message.command, list(message.params), message.source]


def json_message(data: list[Any]) -> Message:
    return Message(str(data[0]), tuple(str(p) for p in data[1]), data[2])


def relay_json(relay: Relay) -> dict[str, Any]:
    """*relay* as JSON: the message, its alternate form, time, msgid, tags,
    and the lines of a multiline message."""
    data = {
        "m": message_json(relay.message),
        "t": relay.time,
        "id": relay.msgid,
        "ct": dict(relay.client_tags or {}),
        "a": relay.account,
        "b": relay.bot,
        "alt": message_json(relay.alternate) if relay.alternate else None,
        "bit": relay.alternate_bit,
    }
    if isinstance(relay, MultilineRelay):
        data["ml"] = [relay.ref, relay.command, relay.target, relay.lines]
    return data


def json_relay(data: Mapping[str, Any]) -> Relay:
    relay = Relay(
        json_message(data["m"]),
        float(data["t"]),
        msgid=str(data["id"]),
        client_tags=data.get("ct") or None,
        account=data.get("a"),
        bot=bool(data.get("b")),
    )
    if data.get("alt"):
        relay.set_alternate(json_message(data["alt"]), int(data["bit"]))
    if data.get("ml"):
        ref, command, target, lines = data["ml"]
        return MultilineRelay(
            relay,
            str(ref),
            str(command),
            str(target),
            [(str(text), bool(concat)) for text, concat in lines],
        )
    return relay


def snapshot(channel: Channel) -> dict[str, Any]:
    """The whole state of *channel*, members by folded nick."""
    return {
        "name": channel.name,
        "created": channel.created,
        "members": {
            member.folded_nick: modes for member, modes in channel.members.items()
        },
        "topic": [channel.topic, channel.topic_set_by, channel.topic_set_at],
        "flags": sorted(channel.flags),
        "key": channel.key,
        "limit": channel.limit,
        "bans": [[b.mask, b.set_by, b.set_at] for b in channel.bans],
    }


def apply_snapshot(server: ChatServer, data: Mapping[str, Any]) -> None:
    """Make this node's copy of a channel what its home says it is."""
    name = str(data["name"])
    folded = casefold(name)
    channel = server.channels.get(folded)
    if channel is None:
        channel = Channel(name, int(data["created"]))
        server.channels[folded] = channel
    wanted: dict[ChatProtocol, str] = {}
    for nick, modes in data["members"].items():
        member = server.nicks.get(nick)
        if member is not None and member.registered and not member.closing:
            wanted[member] = str(modes)
    for member in list(channel.members):
        if member not in wanted:
            channel.remove(member)
            member.channels.pop(folded, None)
    for member, modes in wanted.items():
        channel.members[member] = modes
        member.channels[folded] = channel
    channel.topic, channel.topic_set_by, channel.topic_set_at = data["topic"]
    channel.flags = set(data["flags"])
    channel.key = data.get("key")
    channel.limit = data.get("limit")
    channel.bans = [ListEntry(*entry) for entry in data.get("bans") or ()]
    if not channel.members:
        server.channels.pop(folded, None)


def drop_channel(server: ChatServer, folded: str) -> None:
    """The channel is gone at its home: forget this node's copy."""
    channel = server.channels.pop(folded, None)
    if channel is not None:
        for member in list(channel.members):
            member.channels.pop(folded, None)


def channel_parts(
    conn: ChatProtocol, message: Message, max_targets: int
) -> list[tuple[str | None, Message]] | None:
    """*message* cut into parts of one channel each, with the folded name of
    the channel whose home runs it (None: run here), or None when it names
    no channel at all."""
    command, params, tags = message.command, message.params, message.tags
    if not params:
        return None
    first = params[0]
    if command == "JOIN":
        keys = params[1].split(",") if len(params) > 1 else []
        parts: list[tuple[str | None, Message]] = []
        for index, name in enumerate(first.split(",")):
            if name == "0":
                parts += [
                    (folded, Message("PART", (channel.name,), None, tags))
                    for folded, channel in conn.channels.items()
                ]
            elif name:
                key = keys[index] if index < len(keys) else ""
                args = (name, key) if key else (name,)
                parts.append((casefold(name), Message("JOIN", args, None, tags)))
        return parts
    if "batch" in tags:
        return None  # a line of a client's multiline batch: its node has it
    if command in ("PART", "NAMES", "PRIVMSG", "NOTICE", "TAGMSG"):
        targets = [target for target in first.split(",") if target]
        if len(targets) > max_targets or not any(_channel(t) for t in targets):
            return None
        return [
            (_channel(target), Message(command, (target, *params[1:]), None, tags))
            for target in targets
        ]
    if command in ("TOPIC", "KICK", "MODE", "WHO") and first[:1] in CHANTYPES:
        return [(casefold(first), message)]
    if command == "INVITE" and len(params) > 1:
        return [(casefold(params[1]), message)]
    if command == "CHATHISTORY" and len(params) > 1 and params[1][:1] in CHANTYPES:
        return [(casefold(params[1]), message)]
    return None


def _channel(target: str) -> str | None:
    """The folded channel a message target names (after STATUSMSG prefixes)."""
    name = target.lstrip("@+")
    return casefold(name) if name[:1] in CHANTYPES else None
