"""Relayed messages: serialized once per tag profile, shared by recipients.

A recipient's *tag profile* is a small bit mask of the capabilities that
change what a relayed line looks like (``server-time``, ``message-tags``,
``account-tag``).  Most clients share one of very few profiles, so a
message to a channel of thousands is serialized only a handful of times.
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

#: Capability name -> the profile bit it sets.
PROFILE_CAPS = {
    "server-time": SERVER_TIME,
    "message-tags": MESSAGE_TAGS,
    "account-tag": ACCOUNT_TAG,
}

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
    seconds = int(when)
    millis = int((when - seconds) * 1000)
    stamp = _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(seconds))
    return f"{stamp}.{millis:03d}Z"


class Relay:
    """One message on its way to many recipients."""

    __slots__ = ("_cache", "account", "client_tags", "message", "msgid", "time")

    def __init__(
        self,
        message: Message,
        time: float,
        msgid: str | None = None,
        client_tags: Mapping[str, str] | None = None,
        account: str | None = None,
    ) -> None:
        self.message = message
        self.time = time
        self.msgid = msgid or new_msgid()
        self.client_tags = client_tags
        self.account = account
        self._cache: dict[int, bytes] = {}

    def bytes_for(self, recipient: Recipient) -> bytes:
        """The serialized line for *recipient*'s tag profile."""
        profile = recipient.tag_profile
        data = self._cache.get(profile)
        if data is None:
            data = self._serialize(profile)
            self._cache[profile] = data
        return data

    def deliver(self, recipient: Recipient) -> None:
        """Write this message to *recipient*."""
        recipient.write(self.bytes_for(recipient))

    def _serialize(self, profile: int) -> bytes:
        tags: dict[str, str] = {}
        if profile & MESSAGE_TAGS:
            if self.client_tags:
                tags.update(self.client_tags)
            tags["msgid"] = self.msgid
        if profile & SERVER_TIME:
            tags["time"] = format_server_time(self.time)
        if profile & ACCOUNT_TAG and self.account:
            tags["account"] = self.account
        message = self.message.with_tags(tags) if tags else self.message
        return message.to_bytes()
