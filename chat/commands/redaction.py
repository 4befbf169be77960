"""REDACT (IRCv3 draft/message-redaction): take back a message.

``REDACT <target> <msgid> [:<reason>]`` removes a message from history and
tells the target's clients with the capability, which hide it.  Who may:
the sender (logged in to the account it was sent from), the channel's
operators for a channel message, and IRC operators.  Errors are
``FAIL REDACT INVALID_TARGET|REDACT_FORBIDDEN|UNKNOWN_MSGID``, as Ergo sends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.logger import Logger
from twisted.python.failure import Failure

from chat import numerics
from chat.casemap import CHANTYPES, casefold
from chat.commands import command
from chat.commands.chathistory import readable_keys
from chat.history import HistoryItem, Query, Selector
from chat.message import Message
from chat.router import Audience

if TYPE_CHECKING:
    from chat.labeled import Response
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

log = Logger()

CAP = "draft/message-redaction"
#: What can be redacted: messages, not channel events.
REDACTABLE = frozenset({"PRIVMSG", "NOTICE", "TAGMSG"})


def _fail(response: Response, server: ChatServer, code: str, *params: str) -> None:
    response.send(Message("FAIL", ("REDACT", code, *params), server.name))
    response.finish()


@command("REDACT", min_params=2)
def handle_redact(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``REDACT <target> <msgid> [:<reason>]``."""
    target, msgid = msg.params[0], msg.params[1]
    oper = "o" in conn.modes
    audience: Audience
    if target[:1] in CHANTYPES:
        channel = server.find_channel(target)
        if channel is None:
            conn.fail("REDACT", "INVALID_TARGET", target, "No such channel")
            return
        if conn not in channel.members and not oper:
            conn.fail(
                "REDACT",
                "REDACT_FORBIDDEN",
                target,
                msgid,
                "You are not on that channel",
            )
            return
        keys: tuple[str, ...] = (channel.folded,)
        may_redact_any = oper or channel.is_operator(conn)
        audience = Audience.channel(channel, skip=conn, cap=CAP)
        name = channel.name
    else:
        user = server.find_user(target)
        if user is None:
            conn.reply(numerics.ERR_NOSUCHNICK, target, "No such nick/channel")
            return
        keys = readable_keys(conn, server, target)
        may_redact_any = oper
        audience = Audience(users=(user,), skip=conn, cap=CAP)
        name = user.nick
    params = (name, msgid, *msg.params[2:3])
    response = conn.responder()
    query = Query(keys, "AROUND", Selector(msgid=msgid), 1, None, REDACTABLE)
    found = server.history.query(query)

    def check(items: list[HistoryItem]) -> None:
        item = items[0] if items and items[0].msgid == msgid else None
        if item is None:
            _fail(
                response,
                server,
                "UNKNOWN_MSGID",
                name,
                msgid,
                "This message does not exist or is too old",
            )
            return
        own = bool(
            conn.account
            and item.account
            and casefold(conn.account) == casefold(item.account)
        )
        if not (own or may_redact_any):
            _fail(
                response,
                server,
                "REDACT_FORBIDDEN",
                name,
                msgid,
                "You are not authorized to delete this message",
            )
            return
        done = server.history.redact(keys, msgid)
        done.addCallback(lambda _: announce())
        done.addErrback(failed)

    def announce() -> None:
        relay = server.relay(Message("REDACT", params, conn.hostmask), conn)
        server.router.publish(relay, audience)
        response.write(relay.bytes_for(conn))
        response.finish()

    def failed(failure: Failure) -> None:
        log.failure("REDACT of {msgid} failed", failure, msgid=msgid)
        _fail(
            response,
            server,
            "REDACT_FORBIDDEN",
            name,
            msgid,
            "Could not delete message",
        )

    found.addCallback(check)
    found.addErrback(failed)
