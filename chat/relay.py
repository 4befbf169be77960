"""Relayed messages: serialized once per tag profile, shared by recipients.

A recipient's *tag profile* is a small bit mask of the capabilities that
change what a relayed line looks like (``server-time``, ``message-tags``,
``account-tag``, ``extended-join``).  Most clients share one of very few
profiles, so a message to a channel of thousands is serialized only a
handful of times, and every recipient of one profile gets the same bytes.
"""

from __future__ import annotations

import itertools
import os
import time as _time
from collections.abc import Mapping
from typing import Protocol

from chat.message import Message

SERVER_TIME = 1
MESSAGE_TAGS = 2
ACCOUNT_TAG = 4
EXTENDED_JOIN = 8
MULTILINE = 16

#: Capability name -> the profile bit it sets.
PROFILE_CAPS = {
    "server-time": SERVER_TIME,
    "message-tags": MESSAGE_TAGS,
    "account-tag": ACCOUNT_TAG,
    "extended-join": EXTENDED_JOIN,
    "draft/multiline": MULTILINE,
}

#: The bits that change the tags of every relayed message.
TAG_BITS = SERVER_TIME | MESSAGE_TAGS | ACCOUNT_TAG

_MSGID_PREFIX = os.urandom(6).hex()
_msgid_counter = itertools.count(1)


class Recipient(Protocol):
    """Anything a relay can be written to."""

    tag_profile: int

    def write(self, data: bytes) -> None: ...


def new_msgid() -> str:
    """A message ID unique to this server process (IRCv3 ``msgid``)."""
    return f"{_MSGID_PREFIX}{next(_msgid_counter):x}"


def format_server_time(when: float) -> str:
    """Format a POSIX time as IRCv3 ``server-time`` (UTC, milliseconds)."""
    seconds, millis = divmod(round(when * 1000), 1000)
    stamp = _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(seconds))
    return f"{stamp}.{millis:03d}Z"


class Relay:
    """One message on its way to many recipients.

    *bot* adds the ``bot`` tag for ``message-tags`` recipients;
    `set_alternate` gives some recipients another form of the message.
    With *hide_msgid* recipients see no ``msgid`` (the later lines of a
    multiline message sent as separate lines); history still keeps it.
    """

    __slots__ = (
        "_cache",
        "_mask",
        "account",
        "alternate",
        "alternate_bit",
        "bot",
        "client_tags",
        "hide_msgid",
        "message",
        "msgid",
        "time",
    )

    def __init__(
        self,
        message: Message,
        time: float,
        msgid: str | None = None,
        client_tags: Mapping[str, str] | None = None,
        account: str | None = None,
        bot: bool = False,
        hide_msgid: bool = False,
    ) -> None:
        self.message = message
        # Millisecond precision, as server-time shows it: a time a client
        # read from a tag selects exactly this message in CHATHISTORY.
        self.time = round(time * 1000) / 1000
        self.msgid = msgid or new_msgid()
        self.client_tags = client_tags
        self.account = account
        self.bot = bot
        self.hide_msgid = hide_msgid
        self.alternate: Message | None = None
        self.alternate_bit = 0
        self._mask = TAG_BITS
        self._cache: dict[int, bytes] = {}

    def set_alternate(self, message: Message, bit: int) -> None:
        """Send *message* instead to recipients whose profile has *bit*
        (the ``extended-join`` form of a JOIN, for example)."""
        self.alternate, self.alternate_bit = message, bit
        self._mask = TAG_BITS | bit
        self._cache.clear()

    def bytes_for(self, recipient: Recipient) -> bytes:
        """The serialized line for *recipient*'s tag profile."""
        profile = recipient.tag_profile & self._mask
        data = self._cache.get(profile)
        if data is None:
            data = self._serialize(profile)
            self._cache[profile] = data
        return data

    def deliver(self, recipient: Recipient) -> None:
        """Write this message to *recipient*."""
        recipient.write(self.bytes_for(recipient))

    def _serialize(self, profile: int) -> bytes:
        message = self.message
        if profile & self.alternate_bit and self.alternate is not None:
            message = self.alternate
        tags: dict[str, str] = {}
        if profile & MESSAGE_TAGS:
            if not self.hide_msgid:
                tags["msgid"] = self.msgid
            if self.bot:
                tags["bot"] = ""
        if profile & SERVER_TIME:
            tags["time"] = format_server_time(self.time)
        if profile & ACCOUNT_TAG and self.account:
            tags["account"] = self.account
        if profile & MESSAGE_TAGS and self.client_tags:
            # Server tags first, so client tags cannot push them out (IRCv3).
            tags.update(self.client_tags)
        return message.with_tags(tags).to_bytes() if tags else message.to_bytes()
