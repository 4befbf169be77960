"""Parse and serialize one IRC line: tags, source, command, parameters.

The wire format follows modern.ircdocs.horse and the IRCv3 message-tags
specification::

    ['@' tags SPACE] [':' source SPACE] command *(SPACE param) [SPACE ':' trailing]

`Message` is immutable; `Message.to_bytes` produces the line with its
``\\r\\n`` terminator, ready to be written to any number of transports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "Message",
    "MessageParseError",
    "escape_tag_value",
    "parse",
    "unescape_tag_value",
]

_EMPTY_TAGS: Mapping[str, str] = MappingProxyType({})

#: Commands whose free text (at this index, when present) is always sent as
#: a trailing parameter with its ``:``, as Ergo's ``force-trailing`` does:
#: many clients and bots read ``PRIVMSG #c :text`` only.
TEXT_PARAM = {
    "AWAY": 0,
    "ERROR": 0,
    "KICK": 2,
    "KILL": 1,
    "NOTICE": 1,
    "PART": 1,
    "PRIVMSG": 1,
    "QUIT": 0,
    "SETNAME": 0,
    "TOPIC": 1,
    "WALLOPS": 0,
}

_TAG_ESCAPES = {";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"}
_TAG_ESCAPE_TABLE = str.maketrans(_TAG_ESCAPES)
_TAG_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


class MessageParseError(ValueError):
    """The line is not a well-formed IRC message."""


def escape_tag_value(value: str) -> str:
    """Escape a tag value for the wire (IRCv3 message-tags)."""
    return value.translate(_TAG_ESCAPE_TABLE)


def unescape_tag_value(raw: str) -> str:
    """Undo `escape_tag_value`; unknown escapes drop the backslash."""
    if "\\" not in raw:
        return raw
    out: list[str] = []
    chars = iter(raw)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        following = next(chars, "")
        out.append(_TAG_UNESCAPES.get(following, following))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Message:
    """One IRC message.

    `params` holds every parameter; the serializer adds the ``:`` before the
    last one when it needs it (empty, contains a space, or starts with ``:``)
    and always before the text of the commands in `TEXT_PARAM`.
    """

    command: str
    params: tuple[str, ...] = ()
    source: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: _EMPTY_TAGS, hash=False)

    def to_line(self, force_trailing: bool = False) -> str:
        """Return the message as text, without the line terminator.

        *force_trailing* always marks the last parameter with ``:``, which
        some clients expect on free-text parameters such as PRIVMSG bodies.
        """
        parts: list[str] = []
        if self.tags:
            parts.append(
                "@"
                + ";".join(
                    f"{key}={escape_tag_value(value)}" if value else key
                    for key, value in self.tags.items()
                )
            )
        if self.source:
            parts.append(":" + self.source)
        parts.append(self.command)
        params = self.params
        if params:
            parts.extend(params[:-1])
            last = params[-1]
            if (
                force_trailing
                or not last
                or " " in last
                or last[0] == ":"
                or TEXT_PARAM.get(self.command, -1) == len(params) - 1
            ):
                parts.append(":" + last)
            else:
                parts.append(last)
        return " ".join(parts)

    def to_bytes(self, force_trailing: bool = False) -> bytes:
        """Return the UTF-8 line with its ``\\r\\n`` terminator."""
        return (self.to_line(force_trailing) + "\r\n").encode("utf-8")

    def with_tags(self, tags: Mapping[str, str]) -> Message:
        """Return a copy carrying *tags* instead of the current tags."""
        return Message(self.command, self.params, self.source, tags)


def _parse_tags(raw: str) -> Mapping[str, str]:
    tags: dict[str, str] = {}
    for item in raw.split(";"):
        if not item:
            continue
        key, _, value = item.partition("=")
        if not key or key == "+":
            raise MessageParseError("empty tag name")
        tags[key] = unescape_tag_value(value)
    return tags


def parse(line: str) -> Message:
    """Parse one line (without its terminator) into a `Message`.

    The command is upper-cased.  Raises `MessageParseError` for a line with
    no command or with stray characters (NUL, CR, LF).
    """
    if "\0" in line or "\r" in line or "\n" in line:
        raise MessageParseError("line contains NUL, CR or LF")
    rest = line.lstrip(" ")
    tags: Mapping[str, str] = _EMPTY_TAGS
    source: str | None = None
    if rest.startswith("@"):
        raw_tags, _, rest = rest[1:].partition(" ")
        tags = _parse_tags(raw_tags)
        rest = rest.lstrip(" ")
    if rest.startswith(":"):
        source, _, rest = rest[1:].partition(" ")
        if not source:
            raise MessageParseError("empty source")
        rest = rest.lstrip(" ")
    trailing: str | None = None
    head, sep, tail = rest.partition(" :")
    if sep:
        trailing = tail
    elif rest.startswith(":"):
        raise MessageParseError("missing command")
    words = [word for word in head.split(" ") if word]
    if not words:
        raise MessageParseError("missing command")
    command = words[0].upper()
    params = words[1:]
    if trailing is not None:
        params.append(trailing)
    return Message(command, tuple(params), source, tags)
