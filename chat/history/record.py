"""What goes into history: messages, and channel events for event-playback.

Command handlers call these right after building the `Relay` they deliver,
so a stored item keeps the msgid, time, account and tags clients saw.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from chat.history import HistoryItem, conversation_key, party

if TYPE_CHECKING:
    from chat.channel import Channel
    from chat.protocol import ChatProtocol
    from chat.relay import Relay
    from chat.server import ChatServer

#: A TAGMSG is kept only with one of these tags (reactions, as Ergo keeps,
#: and ``+draft/persist``/``+persist``, a client asking to keep it): typing
#: notifications would push real messages out of the per-target limit.
STORED_TAGMSG_TAGS = frozenset({"+draft/react", "+react", "+draft/persist", "+persist"})


def _worth_keeping(relay: Relay) -> bool:
    if relay.message.command != "TAGMSG":
        return True
    return any(tag in STORED_TAGMSG_TAGS for tag in relay.client_tags or ())


def _store(
    server: ChatServer, relay: Relay, target: str, sender: str, recipient: str
) -> None:
    message = relay.message
    tags = dict(relay.client_tags or {})
    if relay.bot:
        tags["bot"] = ""
    server.history.add(
        HistoryItem(
            target=target,
            msgid=relay.msgid,
            time=relay.time,
            command=message.command,
            source=message.source or "",
            params=message.params,
            account=relay.account,
            tags=tags,
            sender=sender,
            recipient=recipient,
        )
    )
    # Whoever sees this message must see it only once it is durable.
    server.router.stored_in_turn()


def remember_channel(server: ChatServer, relay: Relay, channel: Channel) -> None:
    """Keep a message (or, for event-playback, an event) of *channel*."""
    if _worth_keeping(relay):
        _store(server, relay, channel.folded, "", "")


def remember_events(
    server: ChatServer, relay: Relay, channels: Iterable[Channel]
) -> None:
    """Keep an event seen in several channels (QUIT, NICK) in each."""
    for channel in channels:
        _store(server, relay, channel.folded, "", "")


def remember_private(
    server: ChatServer, relay: Relay, sender: ChatProtocol, recipient: ChatProtocol
) -> None:
    """Keep a private message, readable by its two parties only."""
    if _worth_keeping(relay):
        one, other = party(sender), party(recipient)
        _store(server, relay, conversation_key(one, other), one, other)
