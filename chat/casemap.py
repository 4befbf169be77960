"""Nick and channel case folding and name validation.

The server uses the ``rfc1459`` case mapping (advertised in ISUPPORT as
``CASEMAPPING=rfc1459``): ASCII letters fold to lower case and ``[]\\~``
fold to ``{}|^``.  Folded names are the keys of every server-side table.
"""

from __future__ import annotations

import re
from functools import lru_cache

CASEMAPPING = "rfc1459"
CHANTYPES = "#&"

_RFC1459 = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~",
    "abcdefghijklmnopqrstuvwxyz{}|^",
)

_NICK_RE = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]*\Z")
_CHANNEL_FORBIDDEN = frozenset(" ,\x07\0\r\n:")


@lru_cache(maxsize=65536)
def casefold(name: str) -> str:
    """Fold *name* with the rfc1459 mapping (cached: names repeat a lot)."""
    return name.translate(_RFC1459)


def is_channel_name(name: str) -> bool:
    """Whether *name* has a channel prefix (says nothing about validity)."""
    return bool(name) and name[0] in CHANTYPES


def valid_nick(nick: str, max_length: int) -> bool:
    """Whether *nick* is an acceptable nickname of at most *max_length*."""
    return 0 < len(nick) <= max_length and _NICK_RE.match(nick) is not None


def valid_channel_name(name: str, max_length: int) -> bool:
    """Whether *name* is an acceptable channel name of at most *max_length*."""
    return (
        1 < len(name) <= max_length
        and name[0] in CHANTYPES
        and not _CHANNEL_FORBIDDEN.intersection(name)
    )


def mask_to_regex(mask: str) -> re.Pattern[str]:
    """Compile an IRC wildcard mask (``*`` and ``?``) to a folded regex."""
    pattern = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in casefold(mask)
    )
    return re.compile(pattern + r"\Z", re.DOTALL)


def mask_matches(mask: str, value: str) -> bool:
    """Whether wildcard *mask* matches *value*, case-insensitively."""
    return _compiled_mask(mask).match(casefold(value)) is not None


@lru_cache(maxsize=4096)
def _compiled_mask(mask: str) -> re.Pattern[str]:
    return mask_to_regex(mask)
