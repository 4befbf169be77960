"""What the client shows, independent of how it is drawn.

The protocol side (`chat.client.connection`) updates a `ClientState`; the
urwid side (`chat.client.ui`) renders it and is told to redraw through the
state's listeners.  Nothing here knows about sockets or terminals.
"""

from __future__ import annotations

import re
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum

#: How many distinct nick colours the UI palette defines.
NICK_COLOURS = 12


class Activity(IntEnum):
    """How much happened in a buffer since it was last looked at."""

    NONE = 0
    EVENTS = 1  # joins, parts, modes
    MESSAGES = 2  # someone said something
    HIGHLIGHT = 3  # your nick was mentioned, or a private message


class Kind:
    """Kinds of lines; the UI picks a format and colour per kind."""

    MESSAGE = "message"
    ACTION = "action"
    NOTICE = "notice"
    JOIN = "join"
    PART = "part"
    QUIT = "quit"
    KICK = "kick"
    NICK = "nick"
    MODE = "mode"
    TOPIC = "topic"
    INFO = "info"
    ERROR = "error"
    GAP = "gap"


#: Kinds that raise a buffer's activity to `Activity.MESSAGES`.
SPOKEN = frozenset({Kind.MESSAGE, Kind.ACTION, Kind.NOTICE})


def fold_rfc1459(name: str) -> str:
    """IRC's default case folding: ASCII plus ``[]\\~`` as ``{}|^``."""
    return name.lower().translate(_RFC1459)


def fold_ascii(name: str) -> str:
    """``CASEMAPPING=ascii`` folding."""
    return name.translate(_ASCII)


_ASCII = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_RFC1459 = str.maketrans("[]\\~", "{}|^")


def _word_in(word: str, text: str) -> bool:
    """Whether *word* (or a phrase) is in *text* as a whole, ignoring case."""
    pattern = rf"(?<!\w){re.escape(word)}(?!\w)"
    return re.search(pattern, text, re.IGNORECASE) is not None


def alerts(buffer: Buffer, line: Line) -> bool:
    """Whether *line* calls for the bell: a highlight or a private message."""
    if line.own or line.history:
        return False
    return line.highlight or (buffer.kind == Buffer.QUERY and line.kind in SPOKEN)


def nick_colour(nick: str) -> int:
    """A stable colour index for *nick* (the same in every session)."""
    return zlib.crc32(fold_rfc1459(nick).encode("utf-8")) % NICK_COLOURS


@dataclass(slots=True)
class Line:
    """One line of a buffer: when, what kind, who, and the text."""

    time: float
    kind: str
    text: str
    nick: str | None = None
    highlight: bool = False
    own: bool = False
    history: bool = False


@dataclass(slots=True)
class Member:
    """A nick in a channel with its prefixes (``@``, ``+``) and away state."""

    nick: str
    prefixes: str = ""
    away: bool = False
    account: str | None = None


class Buffer:
    """The server buffer, a channel, or a private conversation."""

    SERVER = "server"
    CHANNEL = "channel"
    QUERY = "query"

    def __init__(self, name: str, kind: str, limit: int = 2000) -> None:
        self.name = name
        self.kind = kind
        self.lines: deque[Line] = deque(maxlen=limit)
        self.topic = ""
        #: Channel modes that are not lists or prefixes: letter -> argument.
        self.modes: dict[str, str] = {}
        #: Set while the MODE query sent on joining is unanswered.
        self.modes_pending = False
        self.members: dict[str, Member] = {}
        self.activity = Activity.NONE
        self.joined = False
        self.names_pending = False
        #: Set while a CHATHISTORY request for older lines is outstanding.
        self.history_pending = False
        #: No older history exists on the server.
        self.history_exhausted = False
        #: draft/read-marker: the time up to which this buffer was read.
        self.read_until = 0.0
        #: Time of the last line seen before a disconnection (for the gap).
        self.resume_from: float | None = None

    def add(self, line: Line) -> None:
        self.lines.append(line)

    def add_history(self, lines: Iterable[Line]) -> int:
        """Merge history lines by time, skipping ones already shown.

        Returns how many were added.
        """
        seen = {(line.time, line.nick, line.text) for line in self.lines}
        fresh = [
            line for line in lines if (line.time, line.nick, line.text) not in seen
        ]
        if not fresh:
            return 0
        merged = sorted([*self.lines, *fresh], key=lambda line: line.time)
        limit = self.lines.maxlen
        self.lines = deque(merged[-limit:] if limit else merged, maxlen=limit)
        return len(fresh)

    def clear(self) -> None:
        self.lines.clear()

    def forget_channel_state(self) -> None:
        """Drop topic, modes and members: the server will tell them again."""
        self.topic = ""
        self.modes.clear()
        self.modes_pending = False
        self.members.clear()
        self.names_pending = False

    @property
    def mode_string(self) -> str:
        """The channel modes as ``+ntl 10`` (keys are not shown)."""
        letters = "".join(sorted(self.modes))
        args = [
            self.modes[letter]
            for letter in sorted(self.modes)
            if self.modes[letter] and letter != "k"
        ]
        return " ".join(["+" + letters, *args]) if letters else ""

    def sorted_members(self, prefix_order: str) -> list[Member]:
        """Members as IRC clients list them: by highest prefix, then by nick."""

        def rank(member: Member) -> tuple[int, str]:
            ranks = [
                prefix_order.index(p) for p in member.prefixes if p in prefix_order
            ]
            return (min(ranks) if ranks else len(prefix_order), member.nick.lower())

        return sorted(self.members.values(), key=rank)


class Trust:
    """How far the connection's security is established."""

    PLAIN = "plain"  # no TLS at all
    UNVERIFIED = "unverified"  # TLS, but the certificate is unchecked or was bad
    CHECKING = "checking"  # TLS, the handshake has not proved the certificate yet
    VERIFIED = "verified"  # the certificate was checked and is good

    #: States shown as an alarm in the status bar and the header.
    ALARMING = frozenset({PLAIN, UNVERIFIED})


@dataclass(slots=True)
class Status:
    """What the status bar shows."""

    nick: str = ""
    server: str = ""
    state: str = "disconnected"
    lag: float | None = None
    away: bool = False
    security: str = ""
    trust: str = Trust.CHECKING
    user_modes: str = ""


@dataclass
class ClientState:
    """All buffers, the active one, and the status; notifies listeners."""

    nick: str = ""
    scrollback: int = 2000
    status: Status = field(default_factory=Status)
    buffers: list[Buffer] = field(default_factory=list)
    active: int = 0
    #: ISUPPORT PREFIX: mode letters and their prefix characters, highest first.
    prefix_modes: str = "ov"
    prefix_chars: str = "@+"
    chantypes: str = "#&"
    #: ISUPPORT CHANMODES: list modes, always-arg, arg-when-set, no-arg.
    chanmodes: tuple[str, ...] = ("beI", "k", "l", "imnst")
    fold: Callable[[str], str] = fold_rfc1459
    listeners: list[Callable[[], None]] = field(default_factory=list)
    #: Called with each line as it is shown (notifications, logs).
    line_listeners: list[Callable[[Buffer, Line], None]] = field(default_factory=list)
    #: Words besides our nick that make a line a highlight.
    highlights: tuple[str, ...] = ()
    #: Called with each buffer the user switches to (read markers).
    read_listeners: list[Callable[[Buffer], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.buffers:
            self.buffers.append(Buffer("server", Buffer.SERVER, self.scrollback))

    def mode_takes_arg(self, letter: str, adding: bool) -> bool:
        """Whether channel mode *letter* consumes an argument."""
        lists, always, when_set = (*self.chanmodes, "", "", "")[:3]
        return letter in lists or letter in always or (adding and letter in when_set)

    # -- notification -----------------------------------------------------

    def changed(self) -> None:
        """Tell every listener that something visible changed."""
        for listener in list(self.listeners):
            listener()

    # -- buffers ----------------------------------------------------------

    @property
    def server_buffer(self) -> Buffer:
        return self.buffers[0]

    @property
    def current(self) -> Buffer:
        return self.buffers[self.active]

    def is_channel(self, name: str) -> bool:
        return bool(name) and name[0] in self.chantypes

    def find(self, name: str) -> Buffer | None:
        folded = self.fold(name)
        for buffer in self.buffers[1:]:
            if self.fold(buffer.name) == folded:
                return buffer
        return None

    def open(self, name: str, switch: bool = False) -> Buffer:
        """The buffer called *name*, created (after the others) if needed."""
        buffer = self.find(name)
        if buffer is None:
            kind = Buffer.CHANNEL if self.is_channel(name) else Buffer.QUERY
            buffer = Buffer(name, kind, self.scrollback)
            self.buffers.append(buffer)
        if switch:
            self.switch(self.buffers.index(buffer))
        return buffer

    def close(self, buffer: Buffer) -> None:
        """Drop *buffer*; the server buffer stays."""
        if buffer is self.server_buffer:
            return
        index = self.buffers.index(buffer)
        del self.buffers[index]
        if self.active >= index:
            self.active = max(self.active - 1, 0)
        self.changed()

    def switch(self, index: int) -> bool:
        """Make buffer *index* (0-based) active; false if there is none."""
        if not 0 <= index < len(self.buffers):
            return False
        self.active = index
        self.current.activity = Activity.NONE
        for listener in self.read_listeners:
            listener(self.current)
        self.changed()
        return True

    def switch_to_activity(self) -> bool:
        """Switch to the buffer with the strongest activity (oldest first)."""
        best = max(self.buffers, key=lambda b: b.activity)
        if best.activity == Activity.NONE:
            return False
        return self.switch(self.buffers.index(best))

    def cycle(self, step: int) -> None:
        self.switch((self.active + step) % len(self.buffers))

    def channels(self) -> list[Buffer]:
        return [b for b in self.buffers if b.kind == Buffer.CHANNEL]

    # -- lines ------------------------------------------------------------

    def is_me(self, nick: str) -> bool:
        return self.fold(nick) == self.fold(self.nick)

    def mentions_me(self, text: str) -> bool:
        """Whether *text* contains our nick as a word."""
        words = "".join(c if c.isalnum() or c in "[]\\`_^{|}-" else " " for c in text)
        me = self.fold(self.nick) if self.nick else None
        if any(self.fold(word) == me for word in words.split()):
            return True
        return any(_word_in(word, text) for word in self.highlights if word)

    def show(self, buffer: Buffer, line: Line) -> None:
        """Append *line* to *buffer*, mark activity and redraw."""
        buffer.add(line)
        if buffer is not self.current and not line.own and not line.history:
            level = Activity.EVENTS
            if line.highlight or (buffer.kind == Buffer.QUERY and line.kind in SPOKEN):
                level = Activity.HIGHLIGHT
            elif line.kind in SPOKEN:
                level = Activity.MESSAGES
            buffer.activity = max(buffer.activity, level)
        for listener in list(self.line_listeners):
            listener(buffer, line)
        self.changed()

    def info(self, text: str, buffer: Buffer | None = None, now: float = 0.0) -> None:
        """Show a client message (not from IRC) in *buffer* or the server's."""
        self.show(buffer or self.server_buffer, Line(now, Kind.INFO, text))

    def error(self, text: str, buffer: Buffer | None = None, now: float = 0.0) -> None:
        self.show(buffer or self.server_buffer, Line(now, Kind.ERROR, text))

    def buffers_with(self, nick: str) -> list[Buffer]:
        """Channels where *nick* is, plus the query with *nick* if open."""
        folded = self.fold(nick)
        found = [b for b in self.channels() if folded in b.members]
        query = self.find(nick)
        if query is not None and query.kind == Buffer.QUERY:
            found.append(query)
        return found
