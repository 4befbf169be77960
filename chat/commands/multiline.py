"""draft/multiline: messages of several lines, sent in a client batch.

``BATCH +<ref> draft/multiline <target>`` opens a batch; PRIVMSG or NOTICE
lines tagged ``batch=<ref>`` fill it (see `chat.multiline` for the rules
and limits); ``BATCH -<ref>`` delivers it as one message: a batch to
clients with the capability, separate lines to the others.  The label of
the opening line answers for the whole batch (labeled-response).  Errors
are ``FAIL BATCH <code>``, never for a NOTICE batch.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from chat import numerics
from chat.casemap import CHANTYPES
from chat.commands import command
from chat.commands.messaging import can_send, client_tags
from chat.history.record import remember_channel, remember_private
from chat.labeled import Response, new_batch_id
from chat.message import Message
from chat.multiline import (
    BATCH_TYPE,
    CONCAT_TAG,
    MAX_LINES,
    MultilineBatch,
    MultilineError,
    MultilineRelay,
    end_batch,
)
from chat.router import Audience

if TYPE_CHECKING:
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

#: What a client's batch reference tag may be made of.
_REF = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _fail(conn: ChatProtocol, code: str, *params: str) -> None:
    batch = conn.multiline
    if batch is None or batch.command != "NOTICE":
        conn.fail("BATCH", code, *params)


@command("BATCH", min_params=1)
def handle_batch(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``BATCH +<ref> draft/multiline <target>`` and ``BATCH -<ref>``."""
    reference = msg.params[0]
    sign, ref = reference[:1], reference[1:]
    if sign not in ("+", "-") or not _REF.match(ref):
        conn.fail("BATCH", "INVALID_REFTAG", reference, "Invalid batch reference tag")
        end_batch(conn)
        return
    if sign == "+":
        if (
            conn.multiline is not None
            or len(msg.params) < 3
            or msg.params[1] != BATCH_TYPE
        ):
            _fail(conn, "MULTILINE_INVALID", "Invalid multiline batch")
            end_batch(conn)
            return
        opening = conn.response
        conn.multiline = MultilineBatch(
            ref,
            msg.params[2],
            client_tags(msg),
            label=opening.label if opening else None,
        )
        # No ACK now: the opening's label answers for the delivery.
        conn.response = None
        if conn.flood is not None:
            conn.flood.suspend(MAX_LINES + 1)
        return
    batch = conn.multiline
    if batch is None or batch.ref != ref:
        _fail(conn, "MULTILINE_INVALID", "Invalid multiline batch")
        end_batch(conn)
        return
    if not batch.valid():
        _fail(conn, "MULTILINE_INVALID", "Invalid multiline batch")
        end_batch(conn)
        return
    end_batch(conn)
    if batch.label is None:
        _deliver(conn, server, batch)
        return
    # The delivery answers the opening line's label, not this line's.
    response = Response(conn, batch.label)
    collecting, conn.response = conn.response, response
    try:
        _deliver(conn, server, batch)
    finally:
        conn.response = collecting
        response.finish()


def absorb_line(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """A PRIVMSG or NOTICE tagged ``batch``: add it to the open batch."""
    batch = conn.multiline
    if batch is None or msg.tags.get("batch") != batch.ref:
        if msg.command != "NOTICE":
            conn.fail("BATCH", "MULTILINE_INVALID", "Incorrect batch tag sent")
        end_batch(conn)
        return
    if len(msg.params) < 2:
        _fail(conn, "MULTILINE_INVALID", "Invalid multiline batch")
        end_batch(conn)
        return
    try:
        batch.add(msg.command, msg.params[0], msg.params[1], CONCAT_TAG in msg.tags)
    except MultilineError as error:
        _fail(conn, error.code, *error.params, error.text)
        end_batch(conn)


def _deliver(conn: ChatProtocol, server: ChatServer, batch: MultilineBatch) -> None:
    """Send the closed *batch* to its target, as PRIVMSG or NOTICE would."""
    verb, target = batch.command, batch.target
    notice = verb == "NOTICE"
    user: ChatProtocol | None = None
    conn.last_message = server.clock.seconds()
    if target[:1] in CHANTYPES:
        channel = server.find_channel(target)
        if channel is None:
            if not notice:
                conn.reply(numerics.ERR_NOSUCHCHANNEL, target, "No such channel")
            return
        if not can_send(conn, channel):
            if not notice:
                conn.reply(
                    numerics.ERR_CANNOTSENDTOCHAN,
                    channel.name,
                    "Cannot send to channel",
                )
            return
        message = _relay(conn, server, batch, channel.name)
        for relay in message.fallback:
            remember_channel(server, relay, channel)
        server.router.publish(message, Audience.channel(channel, skip=conn))
    else:
        user = server.find_user(target)
        if user is None:
            if not notice:
                conn.reply(numerics.ERR_NOSUCHNICK, target, "No such nick/channel")
            return
        message = _relay(conn, server, batch, user.nick)
        for relay in message.fallback:
            remember_private(server, relay, conn, user)
        if user is conn:
            server.router.write(conn, message.bytes_for(conn))
        else:
            server.router.publish(message, Audience.to(user))
    if "echo-message" in conn.caps:
        conn.relay(message)
    if user is not None and verb == "PRIVMSG" and user.away is not None:
        conn.reply(numerics.RPL_AWAY, user.nick, user.away)


def _relay(
    conn: ChatProtocol, server: ChatServer, batch: MultilineBatch, target: str
) -> MultilineRelay:
    ref = new_batch_id()
    opening = Message("BATCH", (f"+{ref}", BATCH_TYPE, target), conn.hostmask)
    start = server.relay(opening, conn, **batch.tags)
    return MultilineRelay(start, ref, batch.command, target, batch.lines)
