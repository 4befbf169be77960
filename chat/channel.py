"""Channel: members with their prefixes, modes, topic, bans and invites."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chat.casemap import casefold, mask_matches

if TYPE_CHECKING:
    from chat.protocol import ChatProtocol

#: Membership modes, highest first, with the prefix each shows in NAMES/WHO.
MEMBER_PREFIXES = {"o": "@", "v": "+"}
MEMBER_MODES = "ov"

#: Extended ban types (``EXTBAN=,am``, no prefix): ``a:account`` matches
#: users logged in to a matching account, ``m:mask`` mutes instead of banning.
ACCOUNT_EXTBAN = "a"
MUTE_EXTBAN = "m"
EXTBAN_TYPES = ACCOUNT_EXTBAN + MUTE_EXTBAN


def split_extban(mask: str) -> tuple[str, str]:
    """``("m", "bob!*@*")`` for ``m:bob!*@*``; ``("", mask)`` for a plain mask."""
    kind, sep, rest = mask.partition(":")
    if sep and len(kind) == 1 and kind in EXTBAN_TYPES:
        return kind, rest
    return "", mask


def entry_matches(mask: str, member: ChatProtocol) -> bool:
    """Whether list entry *mask* (a hostmask or ``a:account``) names *member*.

    A mute (``m:``) matches as the mask inside it does.
    """
    kind, rest = split_extban(mask)
    if kind == ACCOUNT_EXTBAN:
        return member.account is not None and mask_matches(rest, member.account)
    if kind == MUTE_EXTBAN:
        return entry_matches(rest, member)
    return mask_matches(mask, member.hostmask)


def _is_mute(mask: str) -> bool:
    return split_extban(mask)[0] == MUTE_EXTBAN


@dataclass(slots=True)
class ListEntry:
    """One entry of a channel mask list (bans, ...)."""

    mask: str
    set_by: str
    set_at: int


@dataclass(eq=False, slots=True)
class Channel:
    """A channel and its state.  Keyed on the server by its folded name."""

    name: str
    created: int
    members: dict[ChatProtocol, str] = field(default_factory=dict)
    topic: str = ""
    topic_set_by: str = ""
    topic_set_at: int = 0
    flags: set[str] = field(default_factory=lambda: {"n", "t"})
    key: str | None = None
    limit: int | None = None
    bans: list[ListEntry] = field(default_factory=list)
    #: Ban exceptions (``+e``) and invite exceptions (``+I``).
    exceptions: list[ListEntry] = field(default_factory=list)
    invite_exceptions: list[ListEntry] = field(default_factory=list)
    #: Users invited since the channel was created; weak, so that a user who
    #: quits is forgotten, and bound to the connection, not to the nick.
    invited: weakref.WeakSet[ChatProtocol] = field(default_factory=weakref.WeakSet)
    #: draft/metadata-2 keys and values of the channel.
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def folded(self) -> str:
        """The case-folded name."""
        return casefold(self.name)

    def add(self, member: ChatProtocol, modes: str = "") -> None:
        """Add *member* with membership *modes* (a subset of ``ov``)."""
        self.members[member] = modes

    def remove(self, member: ChatProtocol) -> None:
        """Remove *member*; it is not an error if it was not there."""
        self.members.pop(member, None)

    def has_mode(self, member: ChatProtocol, mode: str) -> bool:
        """Whether *member* has membership *mode* (``o`` or ``v``)."""
        return mode in self.members.get(member, "")

    def is_operator(self, member: ChatProtocol) -> bool:
        """Whether *member* is a channel operator (``+o``)."""
        return "o" in self.members.get(member, "")

    def set_member_mode(self, member: ChatProtocol, mode: str, on: bool) -> bool:
        """Give or take membership *mode*; return whether anything changed."""
        current = self.members[member]
        if (mode in current) == on:
            return False
        wanted = set(current) | {mode} if on else set(current) - {mode}
        self.members[member] = "".join(m for m in MEMBER_MODES if m in wanted)
        return True

    def prefix(self, member: ChatProtocol, multi: bool = False) -> str:
        """The NAMES prefix of *member*: the highest, or all with *multi*."""
        modes = self.members.get(member, "")
        if not modes:
            return ""
        if multi:
            return "".join(MEMBER_PREFIXES[m] for m in modes)
        return MEMBER_PREFIXES[modes[0]]

    def mask_list(self, letter: str) -> list[ListEntry]:
        """The list of list mode *letter*: ``b``, ``e`` or ``I``."""
        if letter == "e":
            return self.exceptions
        if letter == "I":
            return self.invite_exceptions
        return self.bans

    def is_banned(self, member: ChatProtocol) -> bool:
        """Whether a ban (not a mute) names *member* and no ``+e`` excepts it."""
        return any(
            not _is_mute(entry.mask) and entry_matches(entry.mask, member)
            for entry in self.bans
        ) and not any(
            not _is_mute(entry.mask) and entry_matches(entry.mask, member)
            for entry in self.exceptions
        )

    def is_muted(self, member: ChatProtocol) -> bool:
        """Whether a ban or a mute (``m:``) names *member*, with no exception."""
        return any(
            entry_matches(entry.mask, member) for entry in self.bans
        ) and not any(entry_matches(entry.mask, member) for entry in self.exceptions)

    def is_invite_excepted(self, member: ChatProtocol) -> bool:
        """Whether an invite exception (``+I``) lets *member* past ``+i``."""
        return any(
            entry_matches(entry.mask, member) for entry in self.invite_exceptions
        )

    def find_entry(self, letter: str, mask: str) -> ListEntry | None:
        """The entry of list *letter* equal to *mask* under case folding."""
        folded = casefold(mask)
        for entry in self.mask_list(letter):
            if casefold(entry.mask) == folded:
                return entry
        return None

    def is_visible_to(self, conn: ChatProtocol) -> bool:
        """Whether *conn* may see inside: the channel is not +s, or a member."""
        return "s" not in self.flags or conn in self.members

    def mode_string(self, show_key: bool) -> tuple[str, ...]:
        """The channel modes as MODE parameters (for RPL_CHANNELMODEIS)."""
        letters = "".join(sorted(self.flags))
        params: list[str] = []
        if self.key is not None:
            letters += "k"
            params.append(self.key if show_key else "*")
        if self.limit is not None:
            letters += "l"
            params.append(str(self.limit))
        return ("+" + letters, *params)
