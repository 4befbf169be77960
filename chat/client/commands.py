"""Slash commands typed in the input line, turned into session calls.

Each command is a function registered in `COMMANDS` with its usage and a
one-line help; `/help` and Tab completion read the same table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chat.client.connection import Session
from chat.client.model import Buffer, Kind
from chat.message import escape_tag_value

Handler = Callable[[Session, str, Buffer], None]


@dataclass(frozen=True, slots=True)
class Command:
    handler: Handler
    usage: str
    help: str


COMMANDS: dict[str, Command] = {}


def command(name: str, usage: str, help: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(handler, usage, help)
        return handler

    return register


def run(session: Session, text: str) -> None:
    """Run one line typed in the current buffer: a command or a message."""
    buffer = session.state.current
    if text.startswith("/") and not text.startswith("//"):
        name, _, args = text[1:].partition(" ")
        entry = COMMANDS.get(name.lower())
        if entry is None:
            _error(session, f"Unknown command /{name}; type /help for the list", buffer)
            return
        entry.handler(session, args.strip(), buffer)
        return
    if text.startswith("//"):
        text = text[1:]
    if buffer.kind == Buffer.SERVER:
        _error(
            session,
            "This is the server buffer: /join #channel or /msg nick text to talk",
            buffer,
        )
        return
    session.say(buffer.name, text)


def _error(session: Session, text: str, buffer: Buffer) -> None:
    session.state.error(text, buffer, now=session.clock.seconds())


def _info(session: Session, text: str, buffer: Buffer) -> None:
    session.state.info(text, buffer, now=session.clock.seconds())


def _usage(session: Session, name: str, buffer: Buffer) -> None:
    _error(session, f"Usage: {COMMANDS[name].usage}", buffer)


def _channel_arg(session: Session, args: str, buffer: Buffer) -> tuple[str | None, str]:
    """Split an optional leading channel off *args*, defaulting to *buffer*."""
    first, _, rest = args.partition(" ")
    if first and session.state.is_channel(first):
        return first, rest.strip()
    if buffer.kind == Buffer.CHANNEL:
        return buffer.name, args
    return None, args


# -- channels ---------------------------------------------------------------


@command("join", "/join #channel[,#other] [key]", "Join channels and switch to them")
def join(session: Session, args: str, buffer: Buffer) -> None:
    channels, _, key = args.partition(" ")
    if not channels:
        _usage(session, "join", buffer)
        return
    chantypes = session.state.chantypes
    names = ",".join(
        name if name[:1] in chantypes else "#" + name
        for name in channels.split(",")
        if name
    )
    session.join(names, key.strip() or None)


@command("part", "/part [#channel] [reason]", "Leave a channel (this one by default)")
def part(session: Session, args: str, buffer: Buffer) -> None:
    channel, reason = _channel_arg(session, args, buffer)
    if channel is None:
        _usage(session, "part", buffer)
        return
    target = session.state.find(channel) or Buffer(channel, Buffer.CHANNEL)
    session.part(target, reason or None)


@command("topic", "/topic [#channel] [new topic]", "Show or set a channel's topic")
def topic(session: Session, args: str, buffer: Buffer) -> None:
    channel, text = _channel_arg(session, args, buffer)
    if channel is None:
        _usage(session, "topic", buffer)
        return
    if text:
        session.send("TOPIC", channel, text, origin=buffer)
    else:
        session.send("TOPIC", channel, origin=buffer)


@command("names", "/names [#channel]", "List the people in a channel")
def names(session: Session, args: str, buffer: Buffer) -> None:
    channel, _ = _channel_arg(session, args, buffer)
    if channel is None:
        _usage(session, "names", buffer)
        return
    target = session.state.find(channel)
    if target is not None and target.members:
        listed = " ".join(
            m.prefixes[:1] + m.nick
            for m in target.sorted_members(session.state.prefix_chars)
        )
        _info(session, f"People on {target.name}: {listed}", buffer)
    else:
        session.send("NAMES", channel, origin=buffer)


@command("invite", "/invite nick [#channel]", "Invite someone to a channel")
def invite(session: Session, args: str, buffer: Buffer) -> None:
    nick, _, rest = args.partition(" ")
    channel, _ = _channel_arg(session, rest.strip(), buffer)
    if not nick or channel is None:
        _usage(session, "invite", buffer)
        return
    session.send("INVITE", nick, channel, origin=buffer)


@command("kick", "/kick [#channel] nick [reason]", "Remove someone from a channel")
def kick(session: Session, args: str, buffer: Buffer) -> None:
    channel, rest = _channel_arg(session, args, buffer)
    nick, _, reason = rest.partition(" ")
    if channel is None or not nick:
        _usage(session, "kick", buffer)
        return
    params = (channel, nick, reason.strip()) if reason.strip() else (channel, nick)
    session.send("KICK", *params, origin=buffer)


@command("mode", "/mode [target] [+modes [args]]", "Show or change modes")
def mode(session: Session, args: str, buffer: Buffer) -> None:
    words = args.split()
    if not words or words[0][:1] in "+-":
        if buffer.kind == Buffer.CHANNEL:
            words.insert(0, buffer.name)
        else:
            words.insert(0, session.state.nick)
    session.send("MODE", *words, origin=buffer)


def _member_modes(change: str, name: str) -> Handler:
    """/op, /voice and their undoing: ``MODE #channel +oo nick nick``."""

    def handler(session: Session, args: str, buffer: Buffer) -> None:
        channel, rest = _channel_arg(session, args, buffer)
        nicks = rest.split()
        if channel is None or not nicks:
            _usage(session, name, buffer)
            return
        sign, letter = change[0], change[1]
        for start in range(0, len(nicks), _MODES_PER_LINE):
            chunk = nicks[start : start + _MODES_PER_LINE]
            session.send("MODE", channel, sign + letter * len(chunk), *chunk)

    return command(name, f"/{name} [#channel] nick [nick ...]", _MODE_HELP[name])(
        handler
    )


#: Mode changes per MODE line (the RFC's minimum for ISUPPORT MODES).
_MODES_PER_LINE = 3
_MODE_HELP = {
    "op": "Make people channel operators",
    "deop": "Take channel operator status away",
    "voice": "Let people speak in a moderated channel",
    "devoice": "Take voice away",
}
op = _member_modes("+o", "op")
deop = _member_modes("-o", "deop")
voice = _member_modes("+v", "voice")
devoice = _member_modes("-v", "devoice")


def ban_mask(text: str) -> str:
    """A ban mask for *text*: a nick becomes ``nick!*@*``, masks stay."""
    return text if "!" in text or "@" in text else f"{text}!*@*"


def _set_ban(session: Session, args: str, buffer: Buffer, name: str, sign: str) -> None:
    channel, rest = _channel_arg(session, args, buffer)
    if channel is None or not rest.split():
        _usage(session, name, buffer)
        return
    session.send("MODE", channel, f"{sign}b", ban_mask(rest.split()[0]))


@command("ban", "/ban [#channel] nick|mask", "Ban someone from a channel")
def ban(session: Session, args: str, buffer: Buffer) -> None:
    _set_ban(session, args, buffer, "ban", "+")


@command("unban", "/unban [#channel] nick|mask", "Lift a ban")
def unban(session: Session, args: str, buffer: Buffer) -> None:
    _set_ban(session, args, buffer, "unban", "-")


@command("kickban", "/kickban [#channel] nick [reason]", "Ban someone, then kick them")
def kickban(session: Session, args: str, buffer: Buffer) -> None:
    channel, rest = _channel_arg(session, args, buffer)
    nick, _, reason = rest.partition(" ")
    if channel is None or not nick:
        _usage(session, "kickban", buffer)
        return
    session.send("MODE", channel, "+b", ban_mask(nick), origin=buffer)
    params = (channel, nick, reason.strip()) if reason.strip() else (channel, nick)
    session.send("KICK", *params, origin=buffer)


# -- talking ----------------------------------------------------------------


@command("msg", "/msg target text", "Send a message to a nick or channel")
def msg(session: Session, args: str, buffer: Buffer) -> None:
    target, _, text = args.partition(" ")
    if not target or not text:
        _usage(session, "msg", buffer)
        return
    session.say(target, text)


@command("query", "/query nick [text]", "Open a private conversation")
def query(session: Session, args: str, buffer: Buffer) -> None:
    nick, _, text = args.partition(" ")
    if not nick or session.state.is_channel(nick):
        _usage(session, "query", buffer)
        return
    session.state.open(nick, switch=True)
    if text.strip():
        session.say(nick, text.strip())


@command("me", "/me action", "Describe what you are doing")
def me(session: Session, args: str, buffer: Buffer) -> None:
    if buffer.kind == Buffer.SERVER or not args:
        _error(session, "Usage: /me action (in a channel or query)", buffer)
        return
    session.say(buffer.name, args, Kind.ACTION)


@command("notice", "/notice target text", "Send a notice (no automatic replies)")
def notice(session: Session, args: str, buffer: Buffer) -> None:
    target, _, text = args.partition(" ")
    if not target or not text:
        _usage(session, "notice", buffer)
        return
    session.say(target, text, Kind.NOTICE)


@command("ctcp", "/ctcp nick VERSION|PING|TIME [args]", "Ask a client a CTCP query")
def ctcp(session: Session, args: str, buffer: Buffer) -> None:
    nick, _, rest = args.partition(" ")
    query, _, extra = rest.strip().partition(" ")
    if not nick or not query:
        _usage(session, "ctcp", buffer)
        return
    query = query.upper()
    if query == "PING" and not extra:
        extra = f"{session.clock.seconds():.3f}"
    body = f"\x01{query} {extra}\x01" if extra else f"\x01{query}\x01"
    if session.send("PRIVMSG", nick, body):
        _info(session, f"CTCP {query} sent to {nick}", buffer)


@command("ignore", "/ignore [nick|mask]", "Hide someone's messages (no mask: list)")
def ignore(session: Session, args: str, buffer: Buffer) -> None:
    ignores = session.ignores
    if not args:
        if not ignores.masks:
            _info(session, "Nobody is ignored", buffer)
        for mask in ignores.masks:
            _info(session, f"Ignoring {mask}", buffer)
        return
    try:
        mask = ignores.add(args.split()[0])
    except OSError as error:
        _error(session, f"Cannot save the ignore list: {error.strerror}", buffer)
        return
    _info(session, f"Ignoring {mask} (saved in {ignores.path})", buffer)


@command("unignore", "/unignore nick|mask", "Show someone's messages again")
def unignore(session: Session, args: str, buffer: Buffer) -> None:
    if not args:
        _usage(session, "unignore", buffer)
        return
    try:
        removed = session.ignores.remove(args.split()[0])
    except OSError as error:
        _error(session, f"Cannot save the ignore list: {error.strerror}", buffer)
        return
    if removed is None:
        _error(session, f"{args.split()[0]} is not ignored; /ignore lists", buffer)
    else:
        _info(session, f"No longer ignoring {removed}", buffer)


# -- you --------------------------------------------------------------------


@command("nick", "/nick newnick", "Change your nick")
def nick(session: Session, args: str, buffer: Buffer) -> None:
    if not args or " " in args:
        _usage(session, "nick", buffer)
        return
    session.send("NICK", args, origin=buffer)


@command("away", "/away [reason]", "Mark yourself away (no reason: back)")
def away(session: Session, args: str, buffer: Buffer) -> None:
    if args:
        session.send("AWAY", args, origin=buffer)
    else:
        session.send("AWAY", origin=buffer)


@command("back", "/back", "Mark yourself as back")
def back(session: Session, args: str, buffer: Buffer) -> None:
    session.send("AWAY", origin=buffer)


# -- questions --------------------------------------------------------------


@command("whois", "/whois nick", "Show who someone is")
def whois(session: Session, args: str, buffer: Buffer) -> None:
    if not args:
        _usage(session, "whois", buffer)
        return
    session.send("WHOIS", args.split()[0], origin=buffer)


@command("who", "/who mask", "List users matching a mask or in a channel")
def who(session: Session, args: str, buffer: Buffer) -> None:
    target = args or (buffer.name if buffer.kind == Buffer.CHANNEL else "")
    if not target:
        _usage(session, "who", buffer)
        return
    session.send("WHO", target.split()[0], origin=buffer)


@command("list", "/list [pattern]", "List the server's channels")
def list_(session: Session, args: str, buffer: Buffer) -> None:
    session.send("LIST", *args.split(), origin=buffer)


@command(
    "search",
    "/search [#channel|nick] words",
    "Search the server's history (soju.im/search; this buffer by default)",
)
def search(session: Session, args: str, buffer: Buffer) -> None:
    if "soju.im/search" not in session.caps:
        _error(
            session,
            "This server does not offer search (no soju.im/search capability)",
            buffer,
        )
        return
    first, _, rest = args.partition(" ")
    target: str | None = None
    words = args
    if first and (session.state.is_channel(first) or session.state.find(first)):
        target, words = first, rest.strip()
    elif buffer.kind != Buffer.SERVER:
        target = buffer.name
    if not words:
        _usage(session, "search", buffer)
        return
    attributes = {"text": words, "limit": "50"}
    if target is not None:
        attributes["in"] = target
    wire = ";".join(
        f"{key}={escape_tag_value(value)}" for key, value in attributes.items()
    )
    session.search_origin = buffer
    where = f" in {target}" if target else ""
    _info(session, f"Searching{where} for {words!r}", buffer)
    session.send("SEARCH", wire, origin=buffer)


@command("quote", "/quote RAW LINE", "Send a raw IRC line to the server")
def quote(session: Session, args: str, buffer: Buffer) -> None:
    if not args:
        _usage(session, "quote", buffer)
        return
    from chat.message import MessageParseError, parse

    try:
        message = parse(args)
    except MessageParseError as error:
        _error(session, f"Not an IRC line: {error}", buffer)
        return
    session.send(message.command, *message.params, origin=buffer)


# -- buffers and the client -------------------------------------------------


@command("close", "/close", "Close this buffer (leaving the channel)")
def close(session: Session, args: str, buffer: Buffer) -> None:
    if buffer.kind == Buffer.SERVER:
        _error(session, "The server buffer stays open; /quit to leave", buffer)
        return
    if buffer.kind == Buffer.CHANNEL and buffer.joined:
        session.part(buffer, args or None)
    session.state.close(buffer)


@command("clear", "/clear", "Clear this buffer's messages")
def clear(session: Session, args: str, buffer: Buffer) -> None:
    buffer.clear()
    buffer.history_exhausted = True
    session.state.changed()


@command("buffer", "/buffer N|name", "Switch to a buffer by number or name")
def buffer_(session: Session, args: str, buffer: Buffer) -> None:
    state = session.state
    if args.isdigit() and state.switch(int(args) - 1):
        return
    found = state.find(args) if args else None
    if found is None and args.lower() == "server":
        found = state.server_buffer
    if found is None:
        _error(session, f"No buffer {args!r}", buffer)
        return
    state.switch(state.buffers.index(found))


@command("reconnect", "/reconnect", "Connect again (after a failure or /quit)")
def reconnect(session: Session, args: str, buffer: Buffer) -> None:
    session.reconnect()


def _host_port(
    session: Session, args: str, name: str, buffer: Buffer
) -> tuple[str, int | None] | None:
    words = args.split()
    if not words or len(words) > 2 or (len(words) == 2 and not words[1].isdigit()):
        _usage(session, name, buffer)
        return None
    return words[0], int(words[1]) if len(words) == 2 else None


@command("connect", "/connect host [port]", "Connect to another network as well")
def connect(session: Session, args: str, buffer: Buffer) -> None:
    target = _host_port(session, args, "connect", buffer)
    if target is None:
        return
    if session.networks is None:
        _error(session, "This client cannot open more connections", buffer)
        return
    session.networks.connect(*target, like=session)


@command(
    "server",
    "/server [host [port]]",
    "List networks, or move this one to another server",
)
def server(session: Session, args: str, buffer: Buffer) -> None:
    networks = session.networks
    if not args:
        for number, other in enumerate(networks.sessions if networks else [session]):
            status = other.state.status
            config = other.config
            _info(
                session,
                f"{number + 1}: {status.server} ({config.host}:{config.port}, "
                f"{status.state}, {status.security})",
                buffer,
            )
        return
    target = _host_port(session, args, "server", buffer)
    if target is None:
        return
    if networks is None:
        _error(session, "This client cannot open more connections", buffer)
        return
    networks.move(session, *target)


@command("disconnect", "/disconnect [message]", "Leave this buffer's network")
def disconnect(session: Session, args: str, buffer: Buffer) -> None:
    networks = session.networks
    if networks is None or len(networks.sessions) < 2:
        _error(session, "This is the only network; /quit leaves the client", buffer)
        return
    networks.close(session, args or "Leaving")


@command("help", "/help [command]", "List commands, or explain one")
def help_(session: Session, args: str, buffer: Buffer) -> None:
    name = args.lstrip("/").lower()
    if name:
        entry = COMMANDS.get(name)
        if entry is None:
            _error(session, f"No command /{name}", buffer)
        else:
            _info(session, f"{entry.usage} - {entry.help}", buffer)
        return
    _info(session, "Commands (/help COMMAND for details):", buffer)
    for entry in COMMANDS.values():
        _info(session, f"  {entry.usage:<36} {entry.help}", buffer)
    _info(
        session,
        "Keys: Alt+1..9 / Alt+Left/Right / Ctrl+N/P switch buffers, "
        "Alt+A goes to the most active one, a click in the buffer list "
        "switches too, PageUp/PageDown and the mouse wheel scroll, "
        "Tab completes, Up/Down recall input",
        buffer,
    )


@command("quit", "/quit [message]", "Disconnect and leave the client")
def quit_(session: Session, args: str, buffer: Buffer) -> None:
    if session.networks is not None:
        session.networks.quit(args or "Leaving")
    else:
        session.quit(args or "Leaving")
