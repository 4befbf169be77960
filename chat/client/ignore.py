"""The ignore list: ``nick!user@host`` masks whose messages are not shown.

Kept one mask a line in ``ignores`` under the client's state directory, so
it survives restarts.  ``*`` and ``?`` are the only wildcards (IRC nicks may
contain ``[`` and ``]``, which must match themselves).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path


def normalise(mask: str) -> str:
    """A full mask: ``bob`` is ``bob!*@*``, ``bob!b`` is ``bob!b@*``."""
    if "!" not in mask and "@" not in mask:
        return f"{mask}!*@*"
    if "!" not in mask:
        return f"*!{mask}"
    if "@" not in mask:
        return f"{mask}@*"
    return mask


def _pattern(mask: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in mask)
    return re.compile("".join(parts), re.DOTALL)


class Ignores:
    """Masks to ignore, matched case-insensitively with *fold*, saved to *path*."""

    def __init__(self, path: Path, fold: Callable[[str], str]) -> None:
        self.path = path
        self.fold = fold
        #: Why the saved list could not be read, if it could not.
        self.load_error: str | None = None
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        except OSError as error:
            text = ""
            self.load_error = f"cannot read {path}: {error.strerror}"
        self.masks = [line.strip() for line in text.splitlines() if line.strip()]

    def add(self, mask: str) -> str:
        """Ignore *mask* (normalised, returned) and save the list (or OSError)."""
        full = normalise(mask)
        if self.fold(full) not in {self.fold(m) for m in self.masks}:
            self.masks.append(full)
            self._save()
        return full

    def remove(self, mask: str) -> str | None:
        """Stop ignoring *mask*; the mask removed, or None if it was not listed."""
        full = self.fold(normalise(mask))
        for existing in self.masks:
            if self.fold(existing) == full:
                self.masks.remove(existing)
                self._save()
                return existing
        return None

    def matches(self, source: str | None) -> bool:
        """Whether a message from *source* (``nick!user@host``) is ignored."""
        if not source or not self.masks:
            return False
        folded = self.fold(normalise(source))
        return any(_pattern(self.fold(m)).fullmatch(folded) for m in self.masks)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text("".join(f"{m}\n" for m in self.masks), encoding="utf-8")
        temporary.replace(self.path)
