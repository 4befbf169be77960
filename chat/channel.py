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
    #: Users invited since the channel was created; weak, so that a user who
    #: quits is forgotten, and bound to the connection, not to the nick.
    invited: weakref.WeakSet[ChatProtocol] = field(default_factory=weakref.WeakSet)

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

    def is_banned(self, hostmask: str) -> bool:
        """Whether *hostmask* (``nick!user@host``) matches a ban."""
        return any(mask_matches(entry.mask, hostmask) for entry in self.bans)

    def find_ban(self, mask: str) -> ListEntry | None:
        """The ban entry equal to *mask* under case folding, if any."""
        folded = casefold(mask)
        for entry in self.bans:
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
