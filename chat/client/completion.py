"""Tab completion of nicks, channels and /commands in the input line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def candidates(
    word: str,
    at_start: bool,
    nicks: Sequence[str],
    channels: Sequence[str],
    commands: Sequence[str],
    chantypes: str = "#&",
) -> list[str]:
    """Completions of *word* (already including any suffix to insert)."""
    folded = word.lower()
    if at_start and word.startswith("/"):
        return [f"/{name} " for name in sorted(commands) if name.startswith(folded[1:])]
    if word[:1] in chantypes:
        return [f"{c} " for c in channels if c.lower().startswith(folded)]
    suffix = ": " if at_start else " "
    return [f"{nick}{suffix}" for nick in nicks if nick.lower().startswith(folded)]


@dataclass
class Completer:
    """Cycles through completions on repeated Tab presses."""

    _choices: list[str] | None = None
    _index: int = 0
    _start: int = 0
    _end: int = 0

    def reset(self) -> None:
        self._choices = None

    def complete(
        self,
        text: str,
        cursor: int,
        nicks: Sequence[str],
        channels: Sequence[str],
        commands: Sequence[str],
        chantypes: str = "#&",
    ) -> tuple[str, int]:
        """Return the new text and cursor after one Tab press."""
        if self._choices is None:
            start = text.rfind(" ", 0, cursor) + 1
            word = text[start:cursor]
            if not word:
                return text, cursor
            choices = candidates(word, start == 0, nicks, channels, commands, chantypes)
            if not choices:
                return text, cursor
            self._choices, self._index = choices, 0
            self._start, self._end = start, cursor
        else:
            self._index = (self._index + 1) % len(self._choices)
        choice = self._choices[self._index]
        rest = text[self._end :]
        if rest.startswith(" "):
            rest = rest[1:]
        new = text[: self._start] + choice + rest
        self._end = self._start + len(choice)
        return new, self._end
