"""labeled-response and batch: how replies to one command leave the server.

Every line written to a connection goes through `ChatProtocol.write`.  While
a command carrying a ``label`` tag runs, `ChatProtocol.dispatch` collects
those lines in a `Response`; when the command is done the response is sent
as IRCv3 labeled-response asks: an ``ACK`` for no line, the label on the
only line, or a ``labeled-response`` batch around several lines.  A handler
that answers later (after a database query) takes the response with
`ChatProtocol.responder` and finishes it itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING

from chat.message import Message, escape_tag_value

if TYPE_CHECKING:
    from chat.protocol import ChatProtocol

_batch_ids = itertools.count(1)


def new_batch_id() -> str:
    """A batch reference tag unique to this server process."""
    return f"b{next(_batch_ids):x}"


def add_tags(line: bytes, tags: bytes) -> bytes:
    """Put serialized *tags* (``key=value;...``) in front of *line*'s tags."""
    if line.startswith(b"@"):
        return b"@" + tags + b";" + line[1:]
    return b"@" + tags + b" " + line


def in_batch(line: bytes) -> bool:
    """Whether serialized *line* already carries a ``batch`` tag."""
    if not line.startswith(b"@"):
        return False
    head = line[1 : line.find(b" ")]
    return head.startswith(b"batch=") or b";batch=" in head


def _batch_bounds(line: bytes) -> tuple[str, str] | None:
    """``("+", ref)`` or ``("-", ref)`` if *line* is a BATCH line."""
    words = line.split(b" ", 4)
    while words and words[0][:1] in (b"@", b":"):
        words.pop(0)
    if len(words) < 2 or words[0] != b"BATCH" or words[1][:1] not in (b"+", b"-"):
        return None
    return words[1][:1].decode(), words[1][1:].strip().decode()


def split_lines(chunks: Iterable[bytes]) -> list[bytes]:
    """Cut written chunks into single CRLF-terminated lines."""
    lines: list[bytes] = []
    for chunk in chunks:
        lines.extend(line + b"\r\n" for line in chunk.split(b"\r\n") if line)
    return lines


def wrap_batch(
    server_name: str,
    kind: str,
    params: tuple[str, ...],
    lines: Iterable[bytes],
    start_tags: dict[str, str] | None = None,
) -> list[bytes]:
    """*lines* inside ``BATCH +ref kind params...`` / ``BATCH -ref``.

    Lines already in a (nested) batch keep their own ``batch`` tag.
    """
    ref = new_batch_id()
    tag = b"batch=" + ref.encode()
    start = Message("BATCH", (f"+{ref}", kind, *params), server_name)
    if start_tags:
        start = start.with_tags(start_tags)
    out = [start.to_bytes()]
    out.extend(line if in_batch(line) else add_tags(line, tag) for line in lines)
    out.append(Message("BATCH", (f"-{ref}",), server_name).to_bytes())
    return out


class Response:
    """The lines answering one command, labeled once the command is done.

    A response without a label passes lines straight to the connection.
    """

    def __init__(self, conn: ChatProtocol, label: str | None) -> None:
        self.conn = conn
        self.label = label
        self.held = False
        self.done = False
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        """Add serialized lines to the response."""
        if self.label is None:
            self.conn.write(data)
        elif not self.done:
            self._chunks.append(data)

    def send(self, message: Message) -> None:
        """Add one message to the response."""
        self.write(message.to_bytes())

    def finish(self) -> None:
        """Send what was collected, labeled; later writes are dropped."""
        if self.done:
            return
        self.done = True
        try:
            self._send()
        finally:
            if self.held:
                self.conn.response_finished(self)

    def _send(self) -> None:
        if self.label is None:
            return
        conn = self.conn
        lines = split_lines(self._chunks)
        self._chunks = []
        label = b"label=" + escape_tag_value(self.label).encode()
        name = conn.server.name
        if not lines:
            out = [Message("ACK", (), name, {"label": self.label}).to_bytes()]
        elif len(lines) == 1 or self._one_batch(lines):
            out = [add_tags(lines[0], label), *lines[1:]]
        else:
            out = wrap_batch(name, "labeled-response", (), lines, {"label": self.label})
        # Write past any response being collected (a held response that
        # finishes while its own command still runs).
        collecting, conn.response = conn.response, None
        try:
            conn.write(b"".join(out))
        finally:
            conn.response = collecting

    @staticmethod
    def _one_batch(lines: list[bytes]) -> bool:
        """Whether *lines* are exactly one batch, which can carry the label."""
        first, last = _batch_bounds(lines[0]), _batch_bounds(lines[-1])
        if first is None or last is None or first[0] != "+" or last != ("-", first[1]):
            return False
        return all(in_batch(line) for line in lines[1:-1])
