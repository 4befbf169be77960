"""MARKREAD (IRCv3 draft/read-marker): where a user has read up to.

``MARKREAD <target>`` asks for the marker, ``MARKREAD <target>
timestamp=<time>`` moves it forward; the answer is always ``MARKREAD
<target> timestamp=<time>`` (or ``*`` when there is none).  A marker that
moved is sent to the account's other connections with the capability, and
joining a channel tells the joiner its marker there (as Ergo does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat.casemap import CHANTYPES, casefold
from chat.commands import command
from chat.commands.chathistory import parse_timestamp
from chat.message import Message
from chat.relay import format_server_time

if TYPE_CHECKING:
    from chat.channel import Channel
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

CAP = "draft/read-marker"


def _marker_text(when: float | None) -> str:
    return "*" if when is None else "timestamp=" + format_server_time(when)


def _markread(server: ChatServer, target: str, when: float | None) -> Message:
    return Message("MARKREAD", (target, _marker_text(when)), server.name)


@command("MARKREAD")
def handle_markread(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``MARKREAD <target> [timestamp=<time>]``."""
    if not msg.params or not msg.params[0]:
        conn.fail("MARKREAD", "NEED_MORE_PARAMS", "Missing parameters")
        return
    target = msg.params[0]
    name = _display_name(server, target)
    folded = casefold(target)
    markers = server.read_markers
    if len(msg.params) == 1:
        conn.send(_markread(server, name, markers.get(conn, folded)))
        return
    stamp = msg.params[1]
    if not stamp.startswith("timestamp="):
        conn.fail("MARKREAD", "INVALID_PARAMS", stamp, "Invalid timestamp")
        return
    try:
        when = parse_timestamp(stamp.removeprefix("timestamp="))
    except ValueError:
        conn.fail("MARKREAD", "INVALID_PARAMS", stamp, "Invalid timestamp")
        return
    when = round(when * 1000) / 1000
    result = markers.set(conn, folded, when)
    reply = _markread(server, name, result)
    conn.send(reply)
    if result == when and conn.account:
        for other in server.connections:
            if (
                other is not conn
                and other.account == conn.account
                and CAP in other.caps
            ):
                other.send(reply)


def _display_name(server: ChatServer, target: str) -> str:
    """*target* as the server spells it: a channel's own name, else as given."""
    if target[:1] in CHANTYPES:
        channel = server.find_channel(target)
        if channel is not None:
            return channel.name
    return target


def send_marker_on_join(
    conn: ChatProtocol, server: ChatServer, channel: Channel
) -> None:
    """Tell *conn*, which just joined *channel*, its read marker there."""
    if CAP in conn.caps:
        conn.send(
            _markread(
                server, channel.name, server.read_markers.get(conn, channel.folded)
            )
        )
