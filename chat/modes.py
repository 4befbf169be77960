"""Mode strings: parse ``MODE`` requests and format the applied changes.

Channel modes follow the ``CHANMODES=beI,k,l,Cimnst`` and ``PREFIX=(ov)@+``
tokens advertised in ISUPPORT: ``b``, ``e`` and ``I`` are lists (type A),
``k`` always takes a parameter (type B), ``l`` takes one only when set
(type C), ``Cimnst`` never do (type D), and ``o``/``v`` always name a member.
List entries may be extended bans (``EXTBAN=,am``): ``a:account`` and
``m:mask`` (a mute).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chat.channel import ACCOUNT_EXTBAN, MEMBER_MODES, MUTE_EXTBAN, split_extban

#: Channel modes by type, as advertised in ``CHANMODES`` and ``PREFIX``.
LIST_MODES = "beI"
KEY_MODE = "k"
LIMIT_MODE = "l"
#: ``C`` (no CTCP but ACTION), ``i``, ``m``, ``n``, ``s``, ``t``.
FLAG_MODES = "Cimnst"
#: User modes: ``o`` is only ever set by OPER; ``B`` marks a bot (IRCv3).
USER_MODES = "Biow"

#: The longest channel key (the usual ``KEYLEN``).
KEY_LENGTH = 23
#: The largest ``+l`` value accepted.
MAX_LIMIT = 1_000_000
#: The longest ban mask accepted, after normalisation.
MASK_LENGTH = 120

_KEY_FORBIDDEN = frozenset(" ,:\0\r\n\t\x0b\x0c")


@dataclass(frozen=True, slots=True)
class ModeRequest:
    """One mode letter of a request, with its sign and parameter if any."""

    adding: bool
    letter: str
    param: str | None = None

    @property
    def is_list_query(self) -> bool:
        """``MODE #c b`` (or ``e``, ``I``) without a mask: show the list."""
        return self.letter in LIST_MODES and self.param is None


@dataclass(frozen=True, slots=True)
class ModeChange:
    """One applied change, as it appears in the broadcast ``MODE`` line."""

    adding: bool
    letter: str
    param: str | None = None


def _takes_param(letter: str, adding: bool) -> bool:
    if letter in LIST_MODES or letter in MEMBER_MODES or letter == KEY_MODE:
        return True
    return letter == LIMIT_MODE and adding


def parse_channel_modes(
    modestring: str, params: Sequence[str]
) -> tuple[list[ModeRequest], list[str]]:
    """Split *modestring* and its *params* into requests and unknown letters.

    A letter that needs a parameter takes the next one; when none is left it
    gets ``None`` (a list query for ``b``, to be ignored for the others, as
    modern.ircdocs.horse says).  ``-k`` takes a parameter when one is there.
    """
    requests: list[ModeRequest] = []
    unknown: list[str] = []
    remaining = iter(params)
    adding = True
    for letter in modestring:
        if letter in "+-":
            adding = letter == "+"
        elif letter in LIST_MODES + KEY_MODE + LIMIT_MODE + FLAG_MODES + MEMBER_MODES:
            param = next(remaining, None) if _takes_param(letter, adding) else None
            requests.append(ModeRequest(adding, letter, param))
        elif letter not in unknown:
            unknown.append(letter)
    return requests, unknown


def parse_user_modes(modestring: str) -> tuple[list[ModeRequest], list[str]]:
    """Split a user *modestring* into requests and unknown letters."""
    requests: list[ModeRequest] = []
    unknown: list[str] = []
    adding = True
    for letter in modestring:
        if letter in "+-":
            adding = letter == "+"
        elif letter in USER_MODES:
            requests.append(ModeRequest(adding, letter))
        elif letter not in unknown:
            unknown.append(letter)
    return requests, unknown


def format_changes(changes: Iterable[ModeChange]) -> tuple[str, ...]:
    """The ``MODE`` parameters for *changes*: ``("+ov-b", "a", "b", "m!*@*")``."""
    letters: list[str] = []
    params: list[str] = []
    sign = ""
    for change in changes:
        wanted = "+" if change.adding else "-"
        if wanted != sign:
            letters.append(wanted)
            sign = wanted
        letters.append(change.letter)
        if change.param is not None:
            params.append(change.param)
    return ("".join(letters), *params)


def valid_key(key: str) -> bool:
    """Whether *key* can be a channel key (and be typed in a ``JOIN``)."""
    return (
        0 < len(key) <= KEY_LENGTH
        and key.isprintable()
        and not _KEY_FORBIDDEN.intersection(key)
    )


def parse_limit(text: str) -> int | None:
    """The ``+l`` value in *text*, or None when it is not a usable number."""
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    if not 0 < value <= MAX_LIMIT:
        return None
    return value


def normalize_mask(mask: str) -> str | None:
    """Complete a ban mask to ``nick!user@host`` the way other servers do.

    ``nick`` becomes ``nick!*@*``, ``user@host`` becomes ``*!user@host``,
    ``host.name`` becomes ``*!*@host.name`` and ``nick!user`` becomes
    ``nick!user@*``; empty parts become ``*``.  Returns None for a mask that
    cannot be one (too long, or with characters a hostmask never has).
    """
    if not mask or mask.startswith(":") or not mask.isprintable() or " " in mask:
        return None
    if "!" in mask:
        nick, _, rest = mask.partition("!")
        user, _, host = rest.partition("@")
    elif "@" in mask:
        nick = "*"
        user, _, host = mask.partition("@")
    elif "." in mask or ":" in mask:
        nick, user, host = "*", "*", mask
    else:
        nick, user, host = mask, "*", "*"
    full = f"{nick or '*'}!{user or '*'}@{host or '*'}"
    if len(full) > MASK_LENGTH or full.count("!") != 1 or full.count("@") != 1:
        return None
    return full


def normalize_list_mask(mask: str) -> str | None:
    """`normalize_mask` for a list entry that may be an extended ban.

    ``a:account`` keeps its account mask; ``m:mask`` normalizes the mask
    inside (which may itself be ``a:account``).
    """
    kind, rest = split_extban(mask)
    if kind == ACCOUNT_EXTBAN:
        if not rest or not rest.isprintable() or " " in rest or len(mask) > MASK_LENGTH:
            return None
        return mask
    if kind == MUTE_EXTBAN:
        inner = normalize_list_mask(rest)
        if inner is None or split_extban(inner)[0] == MUTE_EXTBAN:
            return None
        return f"{MUTE_EXTBAN}:{inner}"
    return normalize_mask(mask)
