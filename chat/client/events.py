"""Incoming IRC messages turned into lines in the right buffers.

`Events.handle` takes one parsed message after registration bookkeeping
(done by `chat.client.connection.ClientProtocol`) and updates the
`ClientState`: which buffer, what line, nick lists, topics, modes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from chat.client import replies
from chat.client.model import Activity, Buffer, ClientState, Kind, Line, Member
from chat.message import Message

if TYPE_CHECKING:
    from chat.client.connection import Session

#: mIRC colour and formatting codes, and other control characters that
#: would upset a terminal.
_FORMATTING = re.compile(
    r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04[0-9a-fA-F]{0,6}|[\x00-\x08\x0a-\x1f\x7f]"
)

#: CTCP requests answered automatically.
CTCP_VERSION = "chat-server terminal client"


def strip_formatting(text: str) -> str:
    """Drop colour/bold codes and control characters; tabs become spaces."""
    return _FORMATTING.sub("", text).replace("\t", " ")


def nick_of(source: str | None) -> str:
    """``nick`` from ``nick!user@host`` (the whole source for a server)."""
    return (source or "").split("!", 1)[0]


def server_time(message: Message) -> float | None:
    """The ``time`` tag (IRCv3 server-time) as a Unix time, if valid."""
    stamp = message.tags.get("time")
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Events:
    """Dispatch of incoming messages to buffer updates."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.state: ClientState = session.state
        self._collected: list[tuple[Buffer, Line]] | None = None
        self._handlers: dict[str, Callable[[Message, Buffer | None], None]] = {
            "PRIVMSG": self.on_privmsg,
            "NOTICE": self.on_privmsg,
            "JOIN": self.on_join,
            "PART": self.on_part,
            "KICK": self.on_kick,
            "QUIT": self.on_quit,
            "NICK": self.on_nick,
            "TOPIC": self.on_topic,
            "MODE": self.on_mode,
            "AWAY": self.on_away,
            "ACCOUNT": self.on_account,
            "MARKREAD": self.on_markread,
            "INVITE": self.on_invite,
            "FAIL": self.on_standard_reply,
            "WARN": self.on_standard_reply,
            "NOTE": self.on_standard_reply,
            "REGISTER": self.on_registration,
            "VERIFY": self.on_registration,
            "324": self.on_modes_reply,
            "331": self.on_no_topic,
            "332": self.on_topic_reply,
            "353": self.on_names,
            "366": self.on_names_end,
        }

    # -- entry points -----------------------------------------------------

    def handle(self, message: Message, origin: Buffer | None = None) -> None:
        """Show *message*; *origin* is the buffer whose command it answers."""
        handler = self._handlers.get(message.command)
        if handler is not None:
            handler(message, origin)
        elif message.command.isdigit():
            self.on_numeric(message, origin)
        else:
            self.emit(
                self.state.server_buffer,
                Line(self.time_of(message), Kind.INFO, self.raw(message)),
            )

    def history(self, target: str, messages: list[Message]) -> None:
        """Merge a CHATHISTORY batch for *target* into its buffer."""
        buffer = self.state.open(target)
        buffer.history_pending = False
        self._collected = []
        try:
            for message in messages:
                if message.command in ("PRIVMSG", "NOTICE"):
                    self.on_privmsg(message, None)
        finally:
            collected, self._collected = self._collected, None
        for _, line in collected:
            line.history = True
            line.highlight = False
        added = 0
        for line_buffer in {id(b): b for b, _ in collected}.values():
            lines = [line for b, line in collected if b is line_buffer]
            count = line_buffer.add_history(lines)
            if line_buffer is buffer:
                added = count
        if not added:
            buffer.history_exhausted = True
        self.state.changed()

    def search_results(self, messages: list[Message], origin: Buffer | None) -> None:
        """Show a ``soju.im/search`` batch in *origin* (the buffer of /search)."""
        buffer = origin or self.state.current
        found = [m for m in messages if m.command in ("PRIVMSG", "NOTICE")]
        for message in found:
            if len(message.params) < 2:
                continue
            target, text = message.params[0], message.params[-1]
            nick = nick_of(message.source)
            where = target if self.state.is_channel(target) else nick
            if text.startswith("\x01ACTION "):
                text = "* " + text[8:].rstrip("\x01")
            self.emit(
                buffer, self._line(message, Kind.INFO, f"{where} <{nick}> {text}")
            )
        count = f"{len(found)} result{'s' if len(found) != 1 else ''}"
        self.emit(
            buffer, Line(self.session.clock.seconds(), Kind.INFO, f"Search: {count}")
        )

    # -- helpers ----------------------------------------------------------

    def time_of(self, message: Message) -> float:
        stamp = server_time(message)
        return stamp if stamp is not None else self.session.clock.seconds()

    def emit(self, buffer: Buffer, line: Line) -> None:
        if self._collected is not None:
            self._collected.append((buffer, line))
        else:
            self.state.show(buffer, line)

    @staticmethod
    def raw(message: Message) -> str:
        return strip_formatting(" ".join((message.command, *message.params)))

    def _line(
        self, message: Message, kind: str, text: str, nick: str | None = None
    ) -> Line:
        return Line(self.time_of(message), kind, strip_formatting(text), nick)

    def _member_buffer(self, channel: str) -> Buffer | None:
        buffer = self.state.find(channel)
        if buffer is not None and buffer.kind == Buffer.CHANNEL:
            return buffer
        return None

    # -- messages ---------------------------------------------------------

    def on_privmsg(self, message: Message, origin: Buffer | None) -> None:
        if len(message.params) < 2:
            return
        state = self.state
        target, text = message.params[0], message.params[-1]
        nick = nick_of(message.source)
        notice = message.command == "NOTICE"
        from_server = not message.source or ("!" not in message.source and "." in nick)
        own = bool(nick) and state.is_me(nick) and not from_server
        if not own and not from_server and self.session.ignores.matches(message.source):
            return
        kind = Kind.NOTICE if notice else Kind.MESSAGE
        if text.startswith("\x01"):
            ctcp, _, text = text.strip("\x01").partition(" ")
            ctcp = ctcp.upper()
            if ctcp == "ACTION":
                kind = Kind.ACTION
            else:
                self._ctcp(message, nick, ctcp, text, notice, own)
                return
        bare = target.lstrip(state.prefix_chars)
        buffer: Buffer
        if state.is_channel(bare):
            buffer = state.open(bare)
        elif own:
            buffer = state.open(target)
        elif from_server:
            buffer = origin or state.server_buffer
        elif notice:
            buffer = state.find(nick) or origin or state.current
        else:
            buffer = state.open(nick)
        line = self._line(message, kind, text, nick)
        line.own = own
        line.highlight = not own and state.mentions_me(line.text)
        self.emit(buffer, line)

    def _ctcp(
        self, message: Message, nick: str, ctcp: str, text: str, reply: bool, own: bool
    ) -> None:
        if own:
            return
        if reply:
            words = f"CTCP {ctcp} reply from {nick}: {text}"
            if ctcp == "PING":
                try:
                    sent = float(text)
                except ValueError:
                    pass
                else:
                    took = self.session.clock.seconds() - sent
                    words = f"CTCP PING reply from {nick}: {took:.3f} s"
            self.emit(self.state.current, self._line(message, Kind.INFO, words))
            return
        answers = {"VERSION": CTCP_VERSION, "PING": text, "TIME": _ctime()}
        if ctcp in answers and self._collected is None:
            self.session.send("NOTICE", nick, f"\x01{ctcp} {answers[ctcp]}\x01")
        words = f"CTCP {ctcp} request from {nick}"
        self.emit(self.state.server_buffer, self._line(message, Kind.INFO, words))

    # -- membership -------------------------------------------------------

    def on_join(self, message: Message, origin: Buffer | None) -> None:
        if not message.params:
            return
        state = self.state
        channel = message.params[0]
        nick = nick_of(message.source)
        account = message.params[1] if len(message.params) > 2 else None
        if state.is_me(nick):
            buffer = state.open(channel)
            buffer.joined = True
            # Rebuilt from the 332/353/366 that follow and the 324 asked for.
            buffer.forget_channel_state()
            buffer.modes_pending = self.session.send("MODE", channel)
            buffer.history_exhausted = False
            self.emit(buffer, self._line(message, Kind.JOIN, f"You joined {channel}"))
            self.session.joined(buffer)
            return
        members = self._member_buffer(channel)
        if members is None:
            return
        members.members[state.fold(nick)] = Member(
            nick, account=None if account in (None, "*") else account
        )
        host = (message.source or "").partition("!")[2]
        text = f"{nick} joined" + (f" ({host})" if host else "")
        if len(message.params) > 2:
            text += f" [{message.params[2]}]"
        self.emit(members, self._line(message, Kind.JOIN, text, nick))

    def on_part(self, message: Message, origin: Buffer | None) -> None:
        if not message.params:
            return
        nick = nick_of(message.source)
        reason = message.params[1] if len(message.params) > 1 else ""
        suffix = f" ({reason})" if reason else ""
        for channel in message.params[0].split(","):
            buffer = self._member_buffer(channel)
            if buffer is None:
                continue
            if self.state.is_me(nick):
                buffer.joined = False
                buffer.members.clear()
                text = f"You left {buffer.name}{suffix}"
            else:
                buffer.members.pop(self.state.fold(nick), None)
                text = f"{nick} left{suffix}"
            self.emit(buffer, self._line(message, Kind.PART, text, nick))

    def on_kick(self, message: Message, origin: Buffer | None) -> None:
        if len(message.params) < 2:
            return
        channel, victim = message.params[:2]
        reason = message.params[2] if len(message.params) > 2 else ""
        buffer = self._member_buffer(channel)
        if buffer is None:
            return
        kicker = nick_of(message.source)
        suffix = f" ({reason})" if reason else ""
        if self.state.is_me(victim):
            buffer.joined = False
            buffer.members.clear()
            line = self._line(
                message, Kind.KICK, f"{kicker} kicked you{suffix}", kicker
            )
            line.highlight = True
        else:
            buffer.members.pop(self.state.fold(victim), None)
            text = f"{kicker} kicked {victim}{suffix}"
            line = self._line(message, Kind.KICK, text, kicker)
        self.emit(buffer, line)

    def on_quit(self, message: Message, origin: Buffer | None) -> None:
        nick = nick_of(message.source)
        reason = message.params[0] if message.params else ""
        text = f"{nick} quit" + (f" ({reason})" if reason else "")
        for buffer in self.state.buffers_with(nick):
            buffer.members.pop(self.state.fold(nick), None)
            self.emit(buffer, self._line(message, Kind.QUIT, text, nick))

    def on_nick(self, message: Message, origin: Buffer | None) -> None:
        if not message.params:
            return
        state = self.state
        old, new = nick_of(message.source), message.params[0]
        buffers = state.buffers_with(old)
        me = state.is_me(old)
        text = f"{old} is now known as {new}"
        if me:
            state.nick = new
            state.status.nick = new
            text = f"You are now known as {new}"
            if state.server_buffer not in buffers:
                buffers.append(state.server_buffer)
        for buffer in buffers:
            member = buffer.members.pop(state.fold(old), None)
            if member is not None:
                member.nick = new
                buffer.members[state.fold(new)] = member
            if buffer.kind == Buffer.QUERY and not me:
                buffer.name = new
            self.emit(buffer, self._line(message, Kind.NICK, text, new))

    # -- channel state ----------------------------------------------------

    def on_topic(self, message: Message, origin: Buffer | None) -> None:
        if len(message.params) < 2:
            return
        buffer = self._member_buffer(message.params[0])
        if buffer is None:
            return
        nick = nick_of(message.source)
        buffer.topic = strip_formatting(message.params[1])
        text = (
            f"{nick} changed the topic to: {buffer.topic}"
            if buffer.topic
            else f"{nick} cleared the topic"
        )
        self.emit(buffer, self._line(message, Kind.TOPIC, text, nick))

    def on_topic_reply(self, message: Message, origin: Buffer | None) -> None:
        if len(message.params) < 3:
            return
        buffer = self._member_buffer(message.params[1])
        if buffer is None:
            self.on_numeric(message, origin)
            return
        buffer.topic = strip_formatting(message.params[2])
        self.emit(buffer, self._line(message, Kind.TOPIC, f"Topic: {buffer.topic}"))

    def on_no_topic(self, message: Message, origin: Buffer | None) -> None:
        buffer = (
            self._member_buffer(message.params[1]) if len(message.params) > 1 else None
        )
        if buffer is not None:
            buffer.topic = ""
        self.on_numeric(message, origin)

    def on_modes_reply(self, message: Message, origin: Buffer | None) -> None:
        """``324 me #chan +ntl 10``: the channel's modes, asked on join or typed."""
        buffer = (
            self._member_buffer(message.params[1]) if len(message.params) > 2 else None
        )
        if buffer is None:
            self.on_numeric(message, origin)
            return
        buffer.modes.clear()
        self._apply_modes(buffer, message.params[2:])
        if buffer.modes_pending:
            buffer.modes_pending = False
            self.state.changed()
        else:
            self.on_numeric(message, origin)

    def on_names(self, message: Message, origin: Buffer | None) -> None:
        if len(message.params) < 4:
            return
        buffer = self._member_buffer(message.params[2])
        if buffer is None or not buffer.joined:
            self.on_numeric(message, origin)
            return
        if not buffer.names_pending:
            buffer.members.clear()
            buffer.names_pending = True
        prefix_chars = self.state.prefix_chars
        for item in message.params[3].split():
            bare = item.lstrip(prefix_chars)
            prefixes = item[: len(item) - len(bare)]
            nick = bare.split("!", 1)[0]
            if nick:
                buffer.members[self.state.fold(nick)] = Member(nick, prefixes)
        self.state.changed()

    def on_names_end(self, message: Message, origin: Buffer | None) -> None:
        if len(message.params) < 2:
            return
        buffer = self._member_buffer(message.params[1])
        if buffer is None:
            return
        buffer.names_pending = False
        members = buffer.members.values()
        ops = sum(1 for m in members if "@" in m.prefixes)
        voiced = sum(1 for m in members if "+" in m.prefixes and "@" not in m.prefixes)
        text = f"{len(members)} users on {buffer.name} ({ops} ops, {voiced} voiced)"
        self.emit(buffer, self._line(message, Kind.INFO, text))

    def on_mode(self, message: Message, origin: Buffer | None) -> None:
        if len(message.params) < 2:
            return
        state = self.state
        target, changes = message.params[0], message.params[1:]
        nick = nick_of(message.source)
        text = f"{nick} sets mode {' '.join(changes)}"
        if not state.is_channel(target):
            if state.is_me(target):
                state.status.user_modes = _apply_user_modes(
                    state.status.user_modes, changes[0]
                )
            self.emit(
                state.server_buffer,
                self._line(message, Kind.MODE, f"{text} on {target}", nick),
            )
            return
        buffer = self._member_buffer(target)
        if buffer is None:
            return
        self._apply_modes(buffer, changes)
        self.emit(buffer, self._line(message, Kind.MODE, text, nick))

    def _apply_modes(self, buffer: Buffer, changes: tuple[str, ...]) -> None:
        """Update member prefixes (``+o``/``-v``) and the channel's own modes."""
        state = self.state
        if not changes:
            return
        args = list(changes[1:])
        lists = state.chanmodes[0] if state.chanmodes else ""
        adding = True
        for letter in changes[0]:
            if letter in "+-":
                adding = letter == "+"
                continue
            if letter in state.prefix_modes:
                if not args:
                    return
                member = buffer.members.get(state.fold(args.pop(0)))
                if member is None:
                    continue
                char = state.prefix_chars[state.prefix_modes.index(letter)]
                prefixes = member.prefixes.replace(char, "")
                if adding:
                    prefixes += char
                member.prefixes = "".join(
                    c for c in state.prefix_chars if c in prefixes
                )
            elif letter in lists:
                if args:
                    args.pop(0)
            elif adding:
                takes = state.mode_takes_arg(letter, True)
                buffer.modes[letter] = args.pop(0) if takes and args else ""
            else:
                if state.mode_takes_arg(letter, False) and args:
                    args.pop(0)
                buffer.modes.pop(letter, None)

    def on_away(self, message: Message, origin: Buffer | None) -> None:
        nick = nick_of(message.source)
        for buffer in self.state.buffers_with(nick):
            member = buffer.members.get(self.state.fold(nick))
            if member is not None:
                member.away = bool(message.params)
        self.state.changed()

    def on_account(self, message: Message, origin: Buffer | None) -> None:
        if not message.params:
            return
        nick = nick_of(message.source)
        account = message.params[0]
        for buffer in self.state.buffers_with(nick):
            member = buffer.members.get(self.state.fold(nick))
            if member is not None:
                member.account = None if account == "*" else account

    def on_markread(self, message: Message, origin: Buffer | None) -> None:
        """draft/read-marker: read elsewhere (another client of ours) up to a
        time; a buffer with nothing newer is no longer marked active."""
        if len(message.params) < 2 or not message.params[1].startswith("timestamp="):
            return
        buffer = self.state.find(message.params[0])
        if buffer is None:
            return
        try:
            stamp = message.params[1].partition("=")[2].replace("Z", "+00:00")
            until = datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            return
        buffer.read_until = max(buffer.read_until, until)
        newest = buffer.lines[-1].time if buffer.lines else 0.0
        if newest <= buffer.read_until + 0.001:
            buffer.activity = Activity.NONE
            self.state.changed()

    def on_invite(self, message: Message, origin: Buffer | None) -> None:
        if len(message.params) < 2 or self.session.ignores.matches(message.source):
            return
        nick = nick_of(message.source)
        invitee, channel = message.params[:2]
        if self.state.is_me(invitee):
            text = f"{nick} invites you to {channel} (type /join {channel})"
            line = self._line(message, Kind.INFO, text, nick)
            line.highlight = True
            self.emit(self.state.current, line)
        else:
            buffer = self._member_buffer(channel) or self.state.server_buffer
            text = f"{nick} invited {invitee} to {channel}"
            self.emit(buffer, self._line(message, Kind.INFO, text, nick))

    def on_standard_reply(self, message: Message, origin: Buffer | None) -> None:
        if len(message.params) < 3:
            return
        command, code = message.params[:2]
        kind = Kind.ERROR if message.command == "FAIL" else Kind.INFO
        text = f"{command}: {message.params[-1]} ({code})"
        self.emit(origin or self.state.current, self._line(message, kind, text))

    def on_registration(self, message: Message, origin: Buffer | None) -> None:
        """``REGISTER SUCCESS account :text`` (draft/account-registration)."""
        text = message.params[-1] if message.params else message.command
        self.emit(origin or self.state.current, self._line(message, Kind.INFO, text))

    # -- numerics ---------------------------------------------------------

    def on_numeric(self, message: Message, origin: Buffer | None) -> None:
        state = self.state
        if message.command == "005":
            return
        text = replies.describe(message)
        if text is None:
            return
        error = replies.is_error(message)
        subject = message.params[1] if len(message.params) > 2 else ""
        buffer: Buffer | None = origin
        if buffer is None and subject:
            buffer = state.find(subject)
        if buffer is None and (error or message.command in replies.ANSWERS):
            buffer = state.current
        if buffer is None:
            buffer = state.server_buffer
        if message.command in ("305", "306"):
            state.status.away = message.command == "306"
        kind = Kind.ERROR if error else Kind.INFO
        self.emit(buffer, self._line(message, kind, text))


def _apply_user_modes(current: str, change: str) -> str:
    modes = set(current)
    adding = True
    for letter in change:
        if letter in "+-":
            adding = letter == "+"
        elif adding:
            modes.add(letter)
        else:
            modes.discard(letter)
    return "".join(sorted(modes))


def _ctime() -> str:
    return time.strftime("%a %b %d %H:%M:%S %Y")
