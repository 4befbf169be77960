"""Metadata of users and channels (IRCv3 draft/metadata-2): the rules.

A user or channel has up to `MAX_KEYS` key/value pairs (``display-name``,
``avatar``, ``status``...); a connection subscribes to up to `MAX_SUBS`
keys and hears of changes to those only.  Keys are lowercase letters,
digits and ``_./-``; a value is UTF-8 of at most `MAX_VALUE_BYTES` bytes
(and, with its key, short enough for one reply line).
"""

from __future__ import annotations

import re

#: Both names of the capability (Ergo offers both, with one behaviour).
CAPS = ("draft/metadata-2", "draft/metadata-3")
MAX_SUBS = 100
MAX_KEYS = 100
MAX_VALUE_BYTES = 300
#: Key and value together, so that every reply fits on one line (Ergo's).
MAX_COMBINED_BYTES = 350
#: The capability value advertised in CAP LS 302.
CAP_VALUE = (
    f"before-connect,max-subs={MAX_SUBS},max-keys={MAX_KEYS},"
    f"max-value-bytes={MAX_VALUE_BYTES}"
)

_KEY = re.compile(r"^[a-z0-9_./-]+$")


class MetadataLimitError(Exception):
    """The target already has `MAX_KEYS` keys."""


def has_metadata(caps: set[str]) -> bool:
    """Whether a connection with *caps* negotiated metadata."""
    return any(cap in caps for cap in CAPS)


def valid_key(key: str) -> bool:
    """Whether *key* may name a metadata value."""
    return bool(_KEY.match(key))


def value_problem(key: str, value: str) -> str | None:
    """Why *value* cannot be stored under *key*, or None if it can."""
    size = len(value.encode("utf-8"))
    if size > MAX_VALUE_BYTES or len(key) + size > MAX_COMBINED_BYTES:
        return "Value is too long"
    return None


def set_value(values: dict[str, str], key: str, value: str) -> bool:
    """Store *value* under *key* in *values*; whether anything changed.

    Raises `MetadataLimitError` for a new key beyond `MAX_KEYS`.
    """
    if values.get(key) == value:
        return False
    if key not in values and len(values) >= MAX_KEYS:
        raise MetadataLimitError(key)
    values[key] = value
    return True
