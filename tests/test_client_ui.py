"""What a person sees: the urwid screen rendered to text."""

from __future__ import annotations

import time

import urwid
from twisted.trial.unittest import TestCase
from urwid.str_util import calc_width

from chat.client.completion import Completer
from chat.client.model import Line
from chat.client.ui import ChatUI
from tests.client_support import Wire


def screen(ui: ChatUI, cols: int = 80, rows: int = 14) -> list[str]:
    canvas = ui.render((cols, rows), focus=True)
    return [row.decode("utf-8") for row in canvas.text]


def setup_ui(caps: str = "") -> tuple[Wire, ChatUI]:
    urwid.set_encoding("utf-8")
    wire = Wire()
    wire.register(caps=caps)
    wire.feed(
        ":alice!a@h JOIN #chat",
        ":srv 332 alice #chat :Plans for the week",
        ":srv 353 alice = #chat :alice zed @bob +carol Amy",
        ":srv 366 alice #chat :End of /NAMES list",
    )
    wire.sent()
    ui = ChatUI(wire.session)
    wire.state.switch(1)
    return wire, ui


def typed(ui: ChatUI, text: str, size: tuple[int, int] = (80, 14)) -> None:
    for char in text:
        ui.keypress(size, char)


class LayoutTests(TestCase):
    def test_topic_messages_nicklist_status(self) -> None:
        wire, ui = setup_ui()
        wire.feed(":bob!b@h PRIVMSG #chat :good morning")
        rows = screen(ui)
        self.assertTrue(rows[0].startswith("#chat: Plans for the week"))
        text = "\n".join(rows)
        self.assertIn("<bob> good morning", text)
        self.assertIn("[alice]", rows[-2])
        self.assertIn("[2:#chat]", rows[-2])
        self.assertIn("connected", rows[-2])

    def test_nick_list_sorted_with_prefixes(self) -> None:
        _, ui = setup_ui()
        rows = screen(ui)
        right = [row[-16:].rstrip() for row in rows[1:8]]
        self.assertEqual(
            right, ["5 users", "@bob", "+carol", " alice", " Amy", " zed", ""]
        )

    def test_buffer_list_markers(self) -> None:
        wire, ui = setup_ui()
        wire.feed(":alice!a@h JOIN #quiet", ":alice!a@h JOIN #busy")
        wire.state.switch(1)
        wire.feed(
            ":bob!b@h JOIN #quiet",
            ":bob!b@h PRIVMSG #busy :hello",
            ":dave!d@h PRIVMSG alice :private hello",
        )
        left = [row[:16].rstrip() for row in screen(ui)[1:7]]
        self.assertEqual(
            left, [" 1 server", " 2>#chat", " 3.#quiet", " 4+#busy", " 5!dave", ""]
        )
        ui.keypress((80, 14), "meta 5")
        left = [row[:16].rstrip() for row in screen(ui)[1:6]]
        self.assertEqual(left[4], " 5>dave")
        self.assertIn("Private conversation with dave", screen(ui)[0])

    def test_lag_and_away_in_status(self) -> None:
        wire, ui = setup_ui()
        wire.session.lag(0.42)
        wire.feed(":srv 306 alice :You have been marked as being away")
        status = screen(ui, cols=120)[-2]
        self.assertIn("[lag 0.4s]", status)
        self.assertIn("[away]", status)

    def test_wide_characters_keep_columns_aligned(self) -> None:
        wire, ui = setup_ui()
        wire.feed(
            ":bob!b@h PRIVMSG #chat :日本語のテキスト 😀 and more text that wraps"
        )
        rows = screen(ui, cols=60)
        self.assertTrue(any("日本語のテキスト" in row for row in rows))
        self.assertEqual({calc_width(row, 0, len(row)) for row in rows}, {60})

    def test_wrapped_lines_stay_indented(self) -> None:
        wire, ui = setup_ui()
        wire.feed(":bob!b@h PRIVMSG #chat :" + "word " * 20)
        rows = screen(ui, cols=70)
        wrapped = [row for row in rows if "word" in row]
        self.assertGreater(len(wrapped), 1)
        self.assertTrue(all(row[16:22].strip() == "" for row in wrapped[1:]))

    def test_resize_to_narrow_hides_the_lists(self) -> None:
        wire, ui = setup_ui()
        wire.feed(":bob!b@h PRIVMSG #chat :hello")
        self.assertIn("@bob", "\n".join(screen(ui, cols=100)))
        narrow = screen(ui, cols=40, rows=8)
        self.assertNotIn("@bob", "\n".join(narrow))
        stamp = time.strftime("%H:%M", time.localtime(0))
        self.assertTrue(any(row.startswith(f"{stamp} <bob> hello") for row in narrow))
        self.assertIn("@bob", "\n".join(screen(ui, cols=100)))

    def test_server_buffer_has_no_nick_list(self) -> None:
        wire, ui = setup_ui()
        wire.state.switch(0)
        rows = screen(ui)
        self.assertNotIn("@bob", "\n".join(rows))


class KeyTests(TestCase):
    def test_switching_keys(self) -> None:
        wire, ui = setup_ui()
        wire.feed(":alice!a@h JOIN #two")
        size = (80, 14)
        ui.keypress(size, "meta 1")
        self.assertEqual(wire.state.active, 0)
        ui.keypress(size, "ctrl n")
        self.assertEqual(wire.state.active, 1)
        ui.keypress(size, "meta right")
        self.assertEqual(wire.state.active, 2)
        ui.keypress(size, "meta right")
        self.assertEqual(wire.state.active, 0)
        ui.keypress(size, "ctrl p")
        self.assertEqual(wire.state.active, 2)

    def test_alt_a_jumps_to_the_most_active_buffer(self) -> None:
        wire, ui = setup_ui()
        wire.feed(
            ":alice!a@h JOIN #quiet",
            ":alice!a@h JOIN #loud",
            ":bob!b@h JOIN #quiet",
            ":bob!b@h PRIVMSG #loud :alice: ping",
        )
        ui.keypress((80, 14), "meta a")
        self.assertEqual(wire.state.current.name, "#loud")
        ui.keypress((80, 14), "meta a")
        self.assertEqual(wire.state.current.name, "#quiet")
        ui.keypress((80, 14), "meta a")
        self.assertEqual(wire.state.current.name, "#quiet")

    def test_enter_sends_and_history_recalls(self) -> None:
        wire, ui = setup_ui()
        size = (80, 14)
        typed(ui, "first")
        ui.keypress(size, "enter")
        typed(ui, "second")
        ui.keypress(size, "enter")
        self.assertEqual(wire.sent(), ["PRIVMSG #chat :first", "PRIVMSG #chat :second"])
        typed(ui, "draft")
        ui.keypress(size, "up")
        self.assertEqual(ui.input.edit_text, "second")
        ui.keypress(size, "up")
        self.assertEqual(ui.input.edit_text, "first")
        ui.keypress(size, "down")
        ui.keypress(size, "down")
        self.assertEqual(ui.input.edit_text, "draft")

    def test_readline_keys(self) -> None:
        _, ui = setup_ui()
        size = (80, 14)
        typed(ui, "hello big world")
        ui.keypress(size, "ctrl w")
        self.assertEqual(ui.input.edit_text, "hello big ")
        ui.keypress(size, "ctrl a")
        typed(ui, ">")
        self.assertEqual(ui.input.edit_text, ">hello big ")
        ui.keypress(size, "ctrl k")
        self.assertEqual(ui.input.edit_text, ">")
        ui.keypress(size, "ctrl e")
        typed(ui, "x")
        ui.keypress(size, "ctrl u")
        self.assertEqual(ui.input.edit_text, "")

    def test_a_failing_command_is_reported(self) -> None:
        wire, ui = setup_ui()
        wire.session.send = None  # type: ignore[assignment,method-assign]
        typed(ui, "/whois bob")
        ui.keypress((80, 14), "enter")
        self.assertIn("That did not work", wire.state.current.lines[-1].text)
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)

    def test_scrollback_with_page_keys(self) -> None:
        wire, ui = setup_ui()
        for number in range(60):
            wire.feed(f":bob!b@h PRIVMSG #chat :line {number}")
        size = (80, 14)
        self.assertIn("line 59", "\n".join(screen(ui)))
        ui.keypress(size, "page up")
        text = "\n".join(screen(ui))
        self.assertNotIn("line 59", text)
        self.assertIn("line 49", text)
        self.assertIn("more below", text)
        ui.keypress(size, "page down")
        self.assertIn("line 59", "\n".join(screen(ui)))

    def test_new_lines_do_not_move_a_scrolled_view(self) -> None:
        wire, ui = setup_ui()
        for number in range(60):
            wire.feed(f":bob!b@h PRIVMSG #chat :line {number}")
        ui.keypress((80, 14), "page up")
        before = screen(ui)[1:-2]
        wire.feed(":bob!b@h PRIVMSG #chat :" + "new words " * 12)
        self.assertEqual(screen(ui)[1:-2], before)
        ui.keypress((80, 14), "page down")
        ui.keypress((80, 14), "page down")
        self.assertIn("new words", "\n".join(screen(ui)))

    def test_mouse_wheel_scrolls(self) -> None:
        wire, ui = setup_ui()
        for number in range(30):
            wire.feed(f":bob!b@h PRIVMSG #chat :line {number}")
        ui.mouse_event((80, 14), "mouse press", 4, 30, 5, True)
        self.assertNotIn("line 29", "\n".join(screen(ui)))
        ui.mouse_event((80, 14), "mouse press", 5, 30, 5, True)
        self.assertIn("line 29", "\n".join(screen(ui)))

    def test_click_in_the_buffer_list_switches(self) -> None:
        wire, ui = setup_ui()
        wire.feed(":alice!a@h JOIN #other")
        wire.state.switch(1)
        for number in range(30):
            wire.feed(f":bob!b@h PRIVMSG #chat :line {number}")
        ui.mouse_event((80, 14), "mouse press", 4, 30, 5, True)
        self.assertTrue(ui.messages.offset)
        self.assertTrue(ui.mouse_event((80, 14), "mouse press", 1, 4, 3, True))
        self.assertEqual(wire.state.current.name, "#other")
        self.assertEqual(ui.messages.offset, 0)
        self.assertIn(" 3>#other", screen(ui)[3])
        ui.mouse_event((80, 14), "mouse press", 1, 2, 1, True)
        self.assertEqual(wire.state.current, wire.state.server_buffer)
        ui.mouse_event((80, 14), "mouse press", 3, 2, 2, True)
        self.assertEqual(wire.state.current, wire.state.server_buffer, "right click")
        ui.mouse_event((80, 14), "mouse press", 1, 2, 9, True)
        self.assertEqual(wire.state.current, wire.state.server_buffer, "below the list")
        typed(ui, "hi")
        self.assertEqual(ui.input.edit_text, "hi", "typing still goes to the input")

    def test_scrolling_past_the_top_loads_history(self) -> None:
        wire, ui = setup_ui(caps="batch server-time chathistory")
        wire.sent()
        for _ in range(5):
            ui.keypress((80, 14), "page up")
            screen(ui)
        self.assertEqual(
            [line.split(" timestamp=")[0] for line in wire.sent()],
            ["CHATHISTORY BEFORE #chat"],
        )


class CompletionTests(TestCase):
    def test_nick_at_line_start_gets_colon(self) -> None:
        _, ui = setup_ui()
        typed(ui, "ca")
        ui.keypress((80, 14), "tab")
        self.assertEqual(ui.input.edit_text, "carol: ")

    def test_recent_speakers_first_and_cycling(self) -> None:
        wire, ui = setup_ui()
        wire.feed(":Amy!a@h PRIVMSG #chat :hi")
        typed(ui, "hello a")
        ui.keypress((80, 14), "tab")
        self.assertEqual(ui.input.edit_text, "hello Amy ")
        ui.keypress((80, 14), "tab")
        self.assertEqual(ui.input.edit_text, "hello Amy ")  # own nick is skipped

    def test_commands_and_channels(self) -> None:
        _, ui = setup_ui()
        typed(ui, "/jo")
        ui.keypress((80, 14), "tab")
        self.assertEqual(ui.input.edit_text, "/join ")
        typed(ui, "#c")
        ui.keypress((80, 14), "tab")
        self.assertEqual(ui.input.edit_text, "/join #chat ")

    def test_completer_cycles_candidates(self) -> None:
        completer = Completer()
        args = (["bob", "bert"], [], [])
        self.assertEqual(completer.complete("b", 1, *args), ("bob: ", 5))
        self.assertEqual(completer.complete("bob: ", 5, *args), ("bert: ", 6))
        self.assertEqual(completer.complete("bert: ", 6, *args), ("bob: ", 5))


class PasteTests(TestCase):
    def test_short_paste_sends_each_line(self) -> None:
        wire, ui = setup_ui()
        keys = [*"one", "enter", *"two", "enter", *"thr"]
        self.assertEqual(ui.input_filter(keys, []), [])
        self.assertEqual(wire.sent(), ["PRIVMSG #chat :one", "PRIVMSG #chat :two"])
        self.assertEqual(ui.input.edit_text, "thr")

    def test_long_paste_asks_first(self) -> None:
        wire, ui = setup_ui()
        keys: list[str] = []
        for number in range(5):
            keys += [*f"l{number}", "enter"]
        keys.append("x")
        ui.input_filter(keys, [])
        self.assertEqual(wire.sent(), [])
        self.assertIn("Send 5 pasted lines? (y/n)", screen(ui, cols=160)[-2])
        ui.keypress((80, 14), "y")
        self.assertEqual(len(wire.sent()), 5)

    def test_long_paste_can_be_cancelled(self) -> None:
        wire, ui = setup_ui()
        keys: list[str] = []
        for number in range(5):
            keys += [*f"l{number}", "enter"]
        keys.append("x")
        ui.input_filter(keys, [])
        ui.keypress((80, 14), "n")
        self.assertEqual(wire.sent(), [])
        self.assertIn("cancelled", wire.state.server_buffer.lines[-1].text)

    def test_typing_is_not_a_paste(self) -> None:
        _, ui = setup_ui()
        self.assertEqual(ui.input_filter(["a", "b", "enter"], []), ["a", "b", "enter"])


class FormatTests(TestCase):
    def test_compact_event_lines(self) -> None:
        wire, ui = setup_ui()
        wire.feed(
            ":dave!d@h JOIN #chat",
            ":dave!d@h PART #chat :later",
            ":bob!b@h PRIVMSG #chat :\x01ACTION waves\x01",
        )
        text = "\n".join(screen(ui, cols=100))
        self.assertIn("--> dave joined (d@h)", text)
        self.assertIn("<-- dave left (later)", text)
        self.assertIn(" * bob waves", text)

    def test_gap_line(self) -> None:
        wire, ui = setup_ui()
        buffer = wire.state.current
        wire.state.show(buffer, Line(0, "gap", "Disconnected: Connection lost"))
        self.assertIn("~~ Disconnected: Connection lost ~~", "\n".join(screen(ui)))
