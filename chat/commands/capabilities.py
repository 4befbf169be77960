"""IRCv3 capability negotiation: CAP LS, LIST, REQ, END (version 302)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat import numerics
from chat.accounts import registration_cap_value
from chat.commands import command
from chat.commands.registration import try_register
from chat.message import Message
from chat.metadata import CAP_VALUE as METADATA_CAP
from chat.multiline import CAP_VALUE as MULTILINE_CAP

if TYPE_CHECKING:
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

#: Capabilities this server implements, with their CAP 302 values.
SUPPORTED_CAPS: dict[str, str | None] = {
    "account-notify": None,
    "account-tag": None,
    "away-notify": None,
    "batch": None,
    "cap-notify": None,
    "chghost": None,
    "draft/account-registration": "before-connect,custom-account-name",
    "draft/channel-rename": None,
    "draft/chathistory": None,
    "draft/event-playback": None,
    "draft/message-redaction": None,
    "draft/metadata-2": METADATA_CAP,
    "draft/metadata-3": METADATA_CAP,
    "draft/multiline": MULTILINE_CAP,
    "draft/pre-away": None,
    "draft/read-marker": None,
    "echo-message": None,
    "extended-join": None,
    "extended-monitor": None,
    "invite-notify": None,
    "labeled-response": None,
    "message-tags": None,
    "multi-prefix": None,
    "no-implicit-names": None,
    "sasl": "PLAIN,EXTERNAL,SCRAM-SHA-256",
    "server-time": None,
    "setname": None,
    "soju.im/search": None,
    "standard-replies": None,
    "userhost-in-names": None,
}


def cap_values(server: ChatServer) -> dict[str, str | None]:
    """`SUPPORTED_CAPS` with the values that depend on the configuration."""
    values = dict(SUPPORTED_CAPS)
    values["draft/account-registration"] = registration_cap_value(
        server.config.accounts
    )
    return values


#: Capabilities that CAP LS 302 enables implicitly.
IMPLICIT_WITH_302 = ("cap-notify",)

#: The longest line without its CR LF (RFC 1459).
_LINE_BYTES = 510


def _cap_reply(conn: ChatProtocol, server: ChatServer, *params: str) -> None:
    conn.send(Message("CAP", (conn.nick, *params), server.name))


def _cap_list(
    conn: ChatProtocol,
    server: ChatServer,
    subcommand: str,
    names: list[str],
    multiline: bool = True,
) -> None:
    """Send *names* in as many CAP lines as needed (``*`` marks more to come
    for 302 clients), each as full as ``:server CAP nick LS * :...`` allows
    (as Ergo does): pre-302 clients read a single line, which fits."""
    budget = _LINE_BYTES - len(server.name) - len(conn.nick) - len(subcommand) - 11
    lines: list[str] = []
    current = ""
    for name in names:
        if current and len(current) + len(name) + 1 > budget:
            lines.append(current)
            current = name
        else:
            current = f"{current} {name}" if current else name
    lines.append(current)
    for index, line in enumerate(lines):
        if multiline and index < len(lines) - 1:
            _cap_reply(conn, server, subcommand, "*", line)
        else:
            _cap_reply(conn, server, subcommand, line)


@command("CAP", min_params=1, registered=False)
def handle_cap(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    subcommand = msg.params[0].upper()
    if subcommand == "LS":
        version = msg.params[1] if len(msg.params) > 1 else ""
        modern = version.isdigit() and int(version) >= 302
        if not conn.registered:
            conn.cap_negotiating = True
        if modern:
            for name in IMPLICIT_WITH_302:
                conn.set_cap(name, True)
        names = [
            f"{name}={value}" if modern and value else name
            for name, value in cap_values(server).items()
        ]
        _cap_list(conn, server, "LS", names, multiline=modern)
    elif subcommand == "LIST":
        # cap-notify is on for every 302 client: the others read one line.
        multiline = "cap-notify" in conn.caps
        _cap_list(conn, server, "LIST", sorted(conn.caps), multiline)
    elif subcommand == "REQ":
        if len(msg.params) < 2:
            conn.reply(numerics.ERR_NEEDMOREPARAMS, "CAP", "Not enough parameters")
            return
        if not conn.registered:
            conn.cap_negotiating = True
        _request(conn, server, msg.params[1])
    elif subcommand == "END":
        if conn.cap_negotiating and not conn.registered:
            conn.cap_negotiating = False
            try_register(conn, server)
    else:
        conn.reply(numerics.ERR_INVALIDCAPCMD, subcommand, "Invalid CAP command")


def _request(conn: ChatProtocol, server: ChatServer, requested: str) -> None:
    """Apply a CAP REQ atomically: all of it, or none of it."""
    changes: list[tuple[str, bool]] = []
    for item in requested.split():
        enable = not item.startswith("-")
        name = item.lstrip("-")
        if name not in SUPPORTED_CAPS:
            _cap_reply(conn, server, "NAK", requested)
            return
        changes.append((name, enable))
    for name, enable in changes:
        conn.set_cap(name, enable)
    _cap_reply(conn, server, "ACK", requested)
