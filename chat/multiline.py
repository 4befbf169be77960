"""A draft/multiline batch being received: its lines and limits.

A client opens ``BATCH +ref draft/multiline <target>``, sends PRIVMSG or
NOTICE lines tagged ``batch=ref`` (``draft/multiline-concat`` joins a line
to the one before without a line break) and closes it with ``BATCH -ref``.
`MultilineBatch` checks each line as it comes; the command module delivers
the whole message once the batch closes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chat.history import continuation_prefix
from chat.message import Message
from chat.relay import MULTILINE, Recipient, Relay

if TYPE_CHECKING:
    from chat.protocol import ChatProtocol

#: The batch type and the tag of a line joined to the previous one.
BATCH_TYPE = "draft/multiline"
CONCAT_TAG = "draft/multiline-concat"
#: The most bytes of text (line breaks counted) and lines of one message.
MAX_BYTES = 4096
MAX_LINES = 100
#: The capability value advertised in CAP LS 302.
CAP_VALUE = f"max-bytes={MAX_BYTES},max-lines={MAX_LINES}"


#: What a client may send while its batch is open; anything else ends it
#: (as Ergo does), so that an open batch cannot carry other commands past
#: fakelag.
BATCH_COMMANDS = frozenset({"BATCH", "PRIVMSG", "NOTICE"})


def end_batch(conn: ChatProtocol) -> MultilineBatch | None:
    """Close *conn*'s open batch, if any, and pace its lines again."""
    batch, conn.multiline = conn.multiline, None
    if batch is not None and conn.flood is not None:
        conn.flood.resume(1 + batch.size // 512)
    return batch


class MultilineError(ValueError):
    """A line breaks the batch; *code* and *params* go in ``FAIL BATCH``."""

    def __init__(self, code: str, text: str, *params: str) -> None:
        super().__init__(text)
        self.code = code
        self.params = params
        self.text = text


@dataclass(slots=True)
class MultilineBatch:
    """The lines of one open batch, with the client tags of its opening."""

    ref: str
    target: str
    tags: Mapping[str, str] = field(default_factory=dict)
    command: str = ""
    lines: list[tuple[str, bool]] = field(default_factory=list)
    size: int = 0
    #: The label of the opening line: it goes on the delivery.
    label: str | None = None

    def add(self, command: str, target: str, text: str, concat: bool) -> None:
        """Take one line; raise `MultilineError` if it breaks the batch."""
        if target != self.target:
            raise MultilineError(
                "MULTILINE_INVALID_TARGET",
                "Message target does not match the batch target",
                self.target,
                target,
            )
        if self.command and command != self.command:
            raise MultilineError(
                "MULTILINE_INVALID", "PRIVMSG and NOTICE cannot be mixed"
            )
        if concat and not text:
            raise MultilineError(
                "MULTILINE_INVALID", "Cannot send a blank line with the concat tag"
            )
        self.command = command
        if self.lines and not concat:
            self.size += 1  # the line break
        self.size += len(text.encode("utf-8"))
        self.lines.append((text, concat))
        if self.size > MAX_BYTES:
            raise MultilineError(
                "MULTILINE_MAX_BYTES",
                f"Multiline batch byte limit {MAX_BYTES} exceeded",
                str(MAX_BYTES),
            )
        if len(self.lines) > MAX_LINES:
            raise MultilineError(
                "MULTILINE_MAX_LINES",
                f"Multiline batch line limit {MAX_LINES} exceeded",
                str(MAX_LINES),
            )

    def valid(self) -> bool:
        """Whether the batch holds at least one line that is not blank."""
        return any(text for text, _ in self.lines)

    def combined(self) -> str:
        """The message as one text: lines joined by ``\\n`` unless concat."""
        parts: list[str] = []
        for index, (text, concat) in enumerate(self.lines):
            if index and not concat:
                parts.append("\n")
            parts.append(text)
        return "".join(parts)


class MultilineRelay(Relay):
    """One multiline message on its way to many recipients.

    The relay itself is the opening ``BATCH`` line, tagged like any relayed
    message.  Recipients with ``draft/multiline`` (a tag profile bit) get the
    whole batch; the others get each line that is not blank as a message of
    its own, the first with the batch's msgid and the others with none (as
    Ergo does); history keeps those with `continuation_prefix` msgids, so
    that redacting the batch's msgid removes every line.  Each form is
    serialized once per tag profile.
    """

    __slots__ = (
        "_forms",
        "command",
        "end",
        "fallback",
        "inner",
        "lines",
        "ref",
        "target",
    )

    def __init__(
        self,
        start: Relay,
        ref: str,
        command: str,
        target: str,
        lines: list[tuple[str, bool]],
    ) -> None:
        super().__init__(
            start.message,
            start.time,
            start.msgid,
            start.client_tags,
            start.account,
            start.bot,
        )
        self.ref, self.command, self.target, self.lines = ref, command, target, lines
        source = start.message.source
        self.inner = [
            Message(
                command,
                (target, text),
                source,
                {"batch": ref, CONCAT_TAG: ""} if concat else {"batch": ref},
            ).to_bytes()
            for text, concat in lines
        ]
        self.end = Message("BATCH", (f"-{ref}",), source).to_bytes()
        texts = [text for text, _ in lines if text]
        #: The lines as separate messages: what clients without the
        #: capability see, and what history keeps.
        self.fallback = [
            Relay(
                Message(command, (target, text), source),
                start.time,
                msgid=start.msgid
                if index == 0
                else continuation_prefix(start.msgid) + str(index),
                client_tags=start.client_tags,
                account=start.account,
                bot=start.bot,
                hide_msgid=index > 0,
            )
            for index, text in enumerate(texts)
        ]
        self._forms: dict[int, bytes] = {}

    def bytes_for(self, recipient: Recipient) -> bytes:
        """The batch, or the separate lines, for *recipient*'s profile."""
        profile = recipient.tag_profile
        data = self._forms.get(profile)
        if data is None:
            if profile & MULTILINE:
                parts = [super().bytes_for(recipient), *self.inner, self.end]
            else:
                parts = [relay.bytes_for(recipient) for relay in self.fallback]
            data = self._forms[profile] = b"".join(parts)
        return data
