"""The urwid screen: buffer list, topic, messages, nick list, status, input.

`ChatUI` draws a `ClientState` and turns key presses into commands for the
`Session`.  It never touches the network itself; the session's state tells
it when to redraw.  This is the only module of the project importing urwid.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, cast

import urwid
from twisted.logger import Logger

from chat.client import commands
from chat.client.completion import Completer
from chat.client.config import log_path
from chat.client.connection import Session
from chat.client.model import (
    NICK_COLOURS,
    Activity,
    Buffer,
    ClientState,
    Kind,
    Line,
    Trust,
    nick_colour,
)
from chat.client.networks import Networks, single

_NICK_FOREGROUNDS = (
    "light red",
    "light green",
    "yellow",
    "light blue",
    "light magenta",
    "light cyan",
    "dark red",
    "dark green",
    "brown",
    "dark cyan",
    "dark magenta",
    "white",
)

PALETTE: list[tuple[str, str, str] | tuple[str, str, str, str]] = [
    ("topic", "white", "dark blue"),
    ("status", "white", "dark blue"),
    ("status.warn", "yellow,bold", "dark blue"),
    # White on red, and reverse video on a monochrome terminal.
    ("status.danger", "white,bold", "dark red", "standout"),
    ("status.secure", "light green", "dark blue"),
    ("time", "dark gray", ""),
    ("own", "white,bold", ""),
    ("highlight", "yellow,bold", "dark red"),
    ("event", "dark gray", ""),
    ("info", "light gray", ""),
    ("error", "light red,bold", ""),
    ("gap", "yellow", ""),
    ("action", "light magenta", ""),
    ("buffer", "light gray", ""),
    ("buffer.active", "black", "light gray"),
    ("buffer.events", "dark cyan", ""),
    ("buffer.messages", "white,bold", ""),
    ("buffer.highlight", "light red,bold", ""),
    ("nick.away", "dark gray", ""),
    ("prompt", "yellow,bold", ""),
    *((f"nick{i}", _NICK_FOREGROUNDS[i], "") for i in range(NICK_COLOURS)),
]

#: Buffer list markers, weakest to strongest (also visible without colour).
MARKERS = {
    Activity.NONE: " ",
    Activity.EVENTS: ".",
    Activity.MESSAGES: "+",
    Activity.HIGHLIGHT: "!",
}
_MARKER_ATTRS = {
    Activity.NONE: "buffer",
    Activity.EVENTS: "buffer.events",
    Activity.MESSAGES: "buffer.messages",
    Activity.HIGHLIGHT: "buffer.highlight",
}


SIDEBAR_WIDTH = 16
#: Below this many columns the buffer and nick lists are hidden.
NARROW = 60
TIME_WIDTH = 6

Markup = list[Any]
Size = tuple[()] | tuple[int] | tuple[int, int]


def _box(size: Size) -> tuple[int, int]:
    """The (columns, rows) of a box widget's size."""
    if len(size) != 2:
        raise ValueError(f"a box widget needs (columns, rows), got {size}")
    return size


def nick_attr(nick: str) -> str:
    return f"nick{nick_colour(nick)}"


def format_line(line: Line) -> Markup:
    """The urwid markup for one line of a buffer."""
    stamp = time.strftime("%H:%M", time.localtime(line.time))
    markup: Markup = [("time", stamp + " ")]
    nick = line.nick or ""
    body_attr = "highlight" if line.highlight else ("own" if line.own else "")
    if line.kind == Kind.MESSAGE:
        markup += [(nick_attr(nick), f"<{nick}>"), " ", (body_attr, line.text)]
    elif line.kind == Kind.ACTION:
        markup += [
            ("action", " * "),
            (nick_attr(nick), nick),
            " ",
            (body_attr, line.text),
        ]
    elif line.kind == Kind.NOTICE:
        markup += [(nick_attr(nick), f"-{nick}-"), " ", (body_attr, line.text)]
    elif line.kind == Kind.JOIN:
        markup += [("event", "--> " + line.text)]
    elif line.kind in (Kind.PART, Kind.QUIT, Kind.KICK):
        attr = "highlight" if line.highlight else "event"
        markup += [(attr, "<-- " + line.text)]
    elif line.kind == Kind.ERROR:
        markup += [("error", "!! " + line.text)]
    elif line.kind == Kind.GAP:
        markup += [("gap", f"~~ {line.text} ~~")]
    else:
        attr = "highlight" if line.highlight else "info"
        markup += [(attr, "-- " + line.text)]
    return markup


def line_widget(line: Line) -> urwid.Columns:
    """One line with its time in a column, so wrapped text stays indented."""
    markup = format_line(line)
    return urwid.Columns([(TIME_WIDTH, urwid.Text(markup[:1])), urwid.Text(markup[1:])])


class MessageView(urwid.Widget):
    """The current buffer's lines, newest at the bottom, scrolled by rows."""

    _sizing = frozenset([urwid.Sizing.BOX])
    _selectable = False

    def __init__(self, ui: ChatUI) -> None:
        super().__init__()
        self.ui = ui
        #: Rows scrolled up from the bottom (0 follows new messages).
        self.offset = 0
        self.at_top = False
        #: The newest line at the last render, to keep a scrolled view still.
        self._anchor: tuple[Buffer, Line] | None = None

    def scroll(self, rows: int) -> None:
        self.offset = max(0, self.offset + rows)
        self._invalidate()

    def _keep_still(self, buffer: Buffer, cols: int) -> None:
        """While scrolled up, lines arriving below do not move the view."""
        anchor = self._anchor
        self._anchor = (buffer, buffer.lines[-1]) if buffer.lines else None
        if not self.offset or anchor is None or anchor[0] is not buffer:
            return
        added = 0
        for line in reversed(buffer.lines):
            if line is anchor[1]:
                self.offset += added
                return
            added += line_widget(line).rows((cols,))

    def render(self, size: Size, focus: bool = False) -> urwid.Canvas:
        cols, rows = _box(size)
        buffer = self.ui.state.current
        self._keep_still(buffer, cols)
        wanted = rows + self.offset
        canvases: list[urwid.Canvas] = []
        total = 0
        for line in reversed(buffer.lines):
            canvas = line_widget(line).render((cols,))
            canvases.append(canvas)
            total += canvas.rows()
            if total >= wanted:
                break
        self.at_top = total < wanted
        if self.at_top and self.offset:
            self.offset = max(0, total - rows)
            self.ui.session.request_older(buffer)
        canvases.reverse()
        if total < rows:
            canvases.insert(0, urwid.SolidCanvas(" ", cols, rows - total))
            total = rows
        combined = urwid.CanvasCombine([(c, None, False) for c in canvases])
        top = total - self.offset - rows
        combined.trim(top, rows)
        return combined


def _delete_word(text: str, cursor: int) -> tuple[str, int]:
    start = len(text[:cursor].rstrip())
    start = text.rfind(" ", 0, start) + 1
    return text[:start] + text[cursor:], start


#: Readline keys of the input line: (text, cursor) -> (text, cursor).
_EDITING: dict[str, Callable[[str, int], tuple[str, int]]] = {
    "ctrl a": lambda text, cursor: (text, 0),
    "ctrl e": lambda text, cursor: (text, len(text)),
    "ctrl u": lambda text, cursor: (text[cursor:], 0),
    "ctrl k": lambda text, cursor: (text[:cursor], cursor),
    "ctrl w": _delete_word,
}


class InputLine(urwid.Edit):
    """The input line: Enter sends, Up/Down recall, Tab completes."""

    def __init__(self, ui: ChatUI) -> None:
        super().__init__("")
        self.ui = ui
        self.history: list[str] = []
        self._recall = 0
        self._draft = ""
        self.completer = Completer()

    def keypress(self, size: Size, key: str) -> str | None:
        if key != "tab":
            self.completer.reset()
        if key == "enter":
            text = self.edit_text
            self.set_edit_text("")
            if text.strip():
                self.remember(text)
                self.ui.submit(text)
            return None
        if key in _EDITING:
            text, cursor = _EDITING[key](self.edit_text, self.edit_pos)
            self.set_edit_text(text)
            self.set_edit_pos(cursor)
            return None
        if key == "up":
            self._step(-1)
            return None
        if key == "down":
            self._step(1)
            return None
        if key == "tab":
            text, cursor = self.completer.complete(
                self.edit_text,
                self.edit_pos,
                self.ui.completion_nicks(),
                [b.name for b in self.ui.state.channels()],
                list(commands.COMMANDS),
                self.ui.state.chantypes,
            )
            self.set_edit_text(text)
            self.set_edit_pos(cursor)
            return None
        return super().keypress(cast("tuple[int]", size), key)

    def remember(self, text: str) -> None:
        if not self.history or self.history[-1] != text:
            self.history.append(text)
        del self.history[:-500]
        self._recall = len(self.history)

    def _step(self, step: int) -> None:
        if self._recall == len(self.history):
            self._draft = self.edit_text
        self._recall = min(max(self._recall + step, 0), len(self.history))
        text = (
            self._draft
            if self._recall == len(self.history)
            else self.history[self._recall]
        )
        self.set_edit_text(text)
        self.set_edit_pos(len(text))


class BufferEntry(urwid.Text):
    """One buffer in the buffer list: a left click switches to it."""

    def __init__(self, markup: Markup, index: int, ui: ChatUI) -> None:
        super().__init__(markup, wrap="ellipsis")
        self.index = index
        self.ui = ui

    def mouse_event(
        self,
        size: Size,
        event: str,
        button: int,
        col: int,
        row: int,
        focus: bool,
    ) -> bool:
        if event == "mouse press" and button == 1:
            self.ui.messages.offset = 0
            self.ui.networks.switch(self.index)
            return True
        return False


class ChatUI(urwid.WidgetWrap[urwid.Frame]):
    """The whole screen, drawing *session*'s state."""

    def __init__(
        self,
        networks: Networks | Session,
        schedule: Callable[[Callable[[], None]], None] | None = None,
        paste_threshold: int = 3,
    ) -> None:
        if isinstance(networks, Session):
            networks = single(networks)
        self.networks = networks
        self.paste_threshold = paste_threshold
        self.pending_paste: list[str] | None = None
        self.topic = urwid.Text("", wrap="ellipsis")
        self.status = urwid.Text("", wrap="ellipsis")
        self.messages = MessageView(self)
        self.input = InputLine(self)
        self.buffer_list: urwid.SimpleListWalker[BufferEntry] = urwid.SimpleListWalker(
            []
        )
        self.nick_list: urwid.SimpleListWalker[urwid.Text] = urwid.SimpleListWalker([])
        self.columns = urwid.Columns([])
        self._schedule = schedule
        self._scheduled = False
        self._narrow = False
        #: What the nick list widgets were built from (rebuilt only on change).
        self._nick_list_shows: tuple[Buffer, list[tuple[str, str, bool]]] | None = None
        frame = urwid.Frame(
            self.columns,
            header=urwid.AttrMap(self.topic, "topic"),
            footer=urwid.Pile([urwid.AttrMap(self.status, "status"), self.input]),
            focus_part="footer",
        )
        super().__init__(frame)
        networks.listeners.append(self.changed)
        self.refresh()

    @property
    def session(self) -> Session:
        """The network of the current buffer."""
        return self.networks.current_session

    @property
    def state(self) -> ClientState:
        return self.session.state

    # -- redraw -------------------------------------------------------------

    def changed(self) -> None:
        """The state changed: refresh now, or once on the next reactor turn."""
        if self._schedule is None:
            self.refresh()
        elif not self._scheduled:
            self._scheduled = True
            self._schedule(self._deferred_refresh)

    def _deferred_refresh(self) -> None:
        self._scheduled = False
        self.refresh()

    #: Called after each refresh (the main loop redraws the screen).
    on_refresh: Callable[[], None] | None = None

    def refresh(self) -> None:
        state = self.state
        buffer = state.current
        self.topic.set_text(self._header_markup(buffer))
        self.status.set_text(self._status_markup())
        self.buffer_list[:] = [
            BufferEntry(markup, index, self)
            for index, markup in enumerate(self._buffer_markup())
        ]
        sidebar = self.columns.options("given", SIDEBAR_WIDTH)
        contents: list[Any] = [(self.messages, self.columns.options("weight", 1))]
        if not self._narrow:
            contents.insert(0, (urwid.ListBox(self.buffer_list), sidebar))
        if buffer.kind == Buffer.CHANNEL and not self._narrow:
            shown = (
                buffer,
                [(m.nick, m.prefixes, m.away) for m in buffer.members.values()],
            )
            if shown != self._nick_list_shows:
                self._nick_list_shows = shown
                self.nick_list[:] = [
                    urwid.Text(markup, wrap="ellipsis")
                    for markup in self._nick_markup(buffer)
                ]
            contents.append((urwid.ListBox(self.nick_list), sidebar))
        self.columns.contents = contents
        self.messages._invalidate()
        if self.on_refresh is not None:
            self.on_refresh()

    def render(self, size: Size, focus: bool = False) -> urwid.Canvas:
        narrow = _box(size)[0] < NARROW
        if narrow != self._narrow:
            self._narrow = narrow
            self.refresh()
        return super().render(size, focus)

    def _header_markup(self, buffer: Buffer) -> Markup:
        """The topic bar, led by an alarm when the connection is not verified."""
        status = self.state.status
        markup: Markup = []
        if status.trust in Trust.ALARMING:
            markup.append(("status.danger", f" {status.security} "))
            markup.append(" ")
        markup.append(self._topic_text(buffer))
        return markup

    def _security_markup(self) -> tuple[str, str]:
        status = self.state.status
        if status.trust in Trust.ALARMING:
            return ("status.danger", f" {status.security} ")
        if status.trust == Trust.VERIFIED:
            # The server buffer's header says with which CA.
            return ("status.secure", "[TLS verified]")
        return ("status", f"[{status.security}]")

    def _topic_text(self, buffer: Buffer) -> str:
        if buffer.kind == Buffer.CHANNEL:
            joined = "" if buffer.joined else " (not joined)"
            if buffer.mode_string:
                joined += f" ({buffer.mode_string})"
            return (
                f"{buffer.name}{joined}: {buffer.topic}"
                if buffer.topic
                else (f"{buffer.name}{joined}")
            )
        if buffer.kind == Buffer.QUERY:
            return f"Private conversation with {buffer.name}"
        status = self.state.status
        if status.trust in Trust.ALARMING:
            return status.server
        return f"{status.server} - {status.security}"

    def _status_markup(self) -> Markup:
        status = self.state.status
        buffer = self.state.current
        modes = f"(+{status.user_modes})" if status.user_modes else ""
        parts: Markup = [
            time.strftime("[%H:%M] "),
            f"[{status.nick}{modes}] ",
            f"[{self.networks.current_index() + 1}:{buffer.name}] ",
            f"[{status.server}: {status.state}] ",
        ]
        if status.lag is not None:
            parts.append(f"[lag {status.lag:.1f}s] ")
        if status.away:
            parts.append(("status.warn", "[away] "))
        if self.messages.offset:
            parts.append(("status.warn", "[-- more below --] "))
        if self.pending_paste is not None:
            parts.append(
                ("status.warn", f"Send {len(self.pending_paste)} pasted lines? (y/n) ")
            )
        if status.security:
            parts.append(self._security_markup())
        return parts

    def _buffer_markup(self) -> Iterable[Markup]:
        """One row per buffer, numbered across networks, grouped by network."""
        several = len(self.networks.sessions) > 1
        current = self.networks.current_index()
        for index, (session, buffer) in enumerate(self.networks.entries()):
            active = index == current
            marker = ">" if active else MARKERS[buffer.activity]
            attr = "buffer.active" if active else _MARKER_ATTRS[buffer.activity]
            name = buffer.name
            if buffer.kind == Buffer.SERVER and several:
                name = session.state.status.server
            elif buffer.kind != Buffer.SERVER and several:
                name = " " + name
            yield [(attr, f"{index + 1:>2}{marker}{name}")]

    def _nick_markup(self, buffer: Buffer) -> Iterable[Markup]:
        members = buffer.sorted_members(self.state.prefix_chars)
        yield [("event", f"{len(members)} users")]
        for member in members:
            prefix = member.prefixes[:1] or " "
            attr = "nick.away" if member.away else nick_attr(member.nick)
            yield [prefix, (attr, member.nick)]

    # -- input --------------------------------------------------------------

    def completion_nicks(self) -> list[str]:
        """Nicks of the current buffer: recent speakers first, then the rest."""
        buffer = self.state.current
        seen: dict[str, str] = {}
        for line in reversed(buffer.lines):
            if line.nick and line.kind in (Kind.MESSAGE, Kind.ACTION):
                seen.setdefault(self.state.fold(line.nick), line.nick)
        present = {self.state.fold(m.nick): m.nick for m in buffer.members.values()}
        ordered = [
            nick for folded, nick in seen.items() if folded in present or not present
        ]
        ordered += sorted(
            (nick for folded, nick in present.items() if folded not in seen),
            key=str.lower,
        )
        if buffer.kind == Buffer.QUERY and buffer.name not in ordered:
            ordered.append(buffer.name)
        return [nick for nick in ordered if not self.state.is_me(nick)]

    def submit(self, text: str) -> None:
        """Run a typed line; a bug in a command is reported, not fatal."""
        self.messages.offset = 0
        try:
            commands.run(self.session, text)
        except Exception:
            Logger(namespace=__name__, source=self.session).failure(
                "Command {text!r} failed", text=text
            )
            self.state.error(
                f"That did not work (details in {log_path()})", self.state.current
            )

    def paste(self, lines: list[str]) -> None:
        """Several lines arrived at once: send them, asking first if many."""
        lines = [line for line in lines if line.strip()]
        if len(lines) > self.paste_threshold:
            self.pending_paste = lines
            self.refresh()
        else:
            self._send_lines(lines)

    def _send_lines(self, lines: list[str]) -> None:
        buffer = self.state.current
        if buffer.kind != Buffer.SERVER:
            # One message of several lines, where the server takes that.
            self.session.say_lines(buffer.name, lines)
            return
        for line in lines:
            commands.run(self.session, line)

    def keypress(self, size: Size, key: str) -> str | None:
        if self.pending_paste is not None:
            lines, self.pending_paste = self.pending_paste, None
            if key in ("y", "Y"):
                self._send_lines(lines)
            else:
                self.state.info(f"Paste of {len(lines)} lines cancelled")
            self.refresh()
            return None
        networks = self.networks
        if key.startswith("meta ") and key[5:].isdigit():
            number = int(key[5:]) or 10
            networks.switch(number - 1)
        elif key in ("meta right", "ctrl n"):
            networks.cycle(1)
        elif key in ("meta left", "ctrl p"):
            networks.cycle(-1)
        elif key == "meta a":
            networks.switch_to_activity()
        elif key in ("page up", "page down"):
            height = max(_box(size)[1] - 3, 2)
            self.messages.scroll(height - 1 if key == "page up" else 1 - height)
            self.refresh()
        else:
            return super().keypress(size, key)
        if not key.startswith("page"):
            self.messages.offset = 0
        return None

    def mouse_event(
        self,
        size: Size,
        event: str,
        button: int,
        col: int,
        row: int,
        focus: bool,
    ) -> bool | None:
        if event == "mouse press" and button in (4, 5):
            self.messages.scroll(3 if button == 4 else -3)
            self.refresh()
            return True
        handled = super().mouse_event(size, event, button, col, row, focus)
        # A click anywhere leaves the keyboard in the input line.
        self._w.focus_position = "footer"
        return handled

    def input_filter(self, keys: list[Any], raw: list[int]) -> list[Any]:
        """Spot a multi-line paste: text keys after an Enter in one read."""
        if "enter" not in keys[:-1]:
            return keys
        first = keys.index("enter")
        if not any(isinstance(k, str) and len(k) == 1 for k in keys[first + 1 :]):
            return keys
        lines = [""]
        for key in keys:
            if key == "enter":
                lines.append("")
            elif isinstance(key, str) and len(key) == 1:
                lines[-1] += key
        rest = lines.pop()
        edit = self.input
        lines[0] = edit.edit_text + lines[0]
        edit.set_edit_text(rest)
        edit.set_edit_pos(len(rest))
        for line in lines:
            if line.strip():
                edit.remember(line)
        self.paste(lines)
        return []


class TerminalScreen(urwid.display.raw.Screen):
    """The raw terminal, telling *on_closed* once when the terminal goes away."""

    def __init__(self, on_closed: Callable[[], None]) -> None:
        super().__init__()
        self.on_closed: Callable[[], None] | None = on_closed

    def get_available_raw_input(self) -> list[int]:
        try:
            return super().get_available_raw_input()
        except urwid.display.common.InputClosedError:
            if self.on_closed is not None:
                closed, self.on_closed = self.on_closed, None
                closed()
            return []


def start_main_loop(ui: ChatUI, on_terminal_gone: Callable[[], None]) -> urwid.MainLoop:
    """Draw *ui* on the terminal, on the already running Twisted reactor.

    The caller stops the returned loop (``loop.stop()``) after the reactor.
    """
    urwid.set_encoding("utf-8")
    loop = urwid.MainLoop(
        ui,
        PALETTE,
        event_loop=urwid.TwistedEventLoop(manage_reactor=False),
        screen=TerminalScreen(on_terminal_gone),
        input_filter=ui.input_filter,
        handle_mouse=True,
    )
    loop.start()
    ui.on_refresh = loop.draw_screen
    return loop


def terminal_writer(loop: urwid.MainLoop) -> Callable[[str], None]:
    """Write raw text (the bell, notification escapes) to *loop*'s terminal."""
    screen = loop.screen

    def write(text: str) -> None:
        if isinstance(screen, urwid.display.raw.Screen):
            screen.write(text)
            screen.flush()

    return write


__all__ = [
    "PALETTE",
    "ChatUI",
    "TerminalScreen",
    "format_line",
    "start_main_loop",
    "terminal_writer",
]
