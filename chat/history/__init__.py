"""Message history: what was said, kept for CHATHISTORY.

`HistoryStore` is the interface the protocol code uses; `MemoryHistory`
(chat.history.memory) keeps history in memory, for tests and for servers
without a data directory, and `SQLiteHistory` (chat.history.sqlite) keeps it
in ``history.db`` under the data directory, and `PostgresHistory`
(chat.history.postgres) in a PostgreSQL database; `chat.storage.factory`
picks one from the configuration.

Channel history is stored under the folded channel name.  A private
conversation is stored under the *conversation key* of its two parties,
each party being ``a:<account>`` when logged in, else ``n:<folded nick>``:
only those two identities can read it back.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from twisted.internet.defer import Deferred

from chat.casemap import casefold

__all__ = [
    "QUERY_LIMIT",
    "HistoryConfig",
    "HistoryItem",
    "HistoryStore",
    "Query",
    "Search",
    "Selector",
    "Target",
    "continuation_prefix",
    "conversation_key",
    "party",
    "search_words",
    "sender_nick",
]

_NO_TAGS: Mapping[str, str] = MappingProxyType({})
_WORD = re.compile(r"[^\W_]+")

#: The subcommands of CHATHISTORY that select messages from one target.
SELECTIONS = ("LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN")
#: The most messages one CHATHISTORY command returns (``CHATHISTORY=``).
QUERY_LIMIT = 100
#: What a client without draft/event-playback may see.
MESSAGE_COMMANDS = frozenset({"PRIVMSG", "NOTICE"})


@dataclass(frozen=True, slots=True)
class HistoryConfig:
    """Retention and limits of the history store."""

    #: Forget messages older than this many seconds (0: never).
    max_age: float = 30 * 24 * 3600.0
    #: Keep at most this many messages per channel or conversation.
    max_per_target: int = 5000
    #: Seconds a write may wait to be batched with others.
    flush_interval: float = 0.05
    #: Write at once when this many messages are waiting.
    batch_size: int = 500
    #: Seconds between two retention passes of a store that deletes in bulk
    #: (the limits above may be exceeded for that long).
    trim_interval: float = 60.0
    #: Messages a server database store keeps in memory while the database
    #: cannot be reached; beyond that the oldest are dropped.
    max_buffered: int = 50000
    #: Seconds between two attempts to write while the database is away
    #: (doubling up to 32 times this).
    retry_interval: float = 1.0
    #: Seconds `HistoryStore.stored` waits for a server database that does
    #: not answer before it fires all the same (the write goes on).
    max_stored_wait: float = 2.0


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """One stored message, with what it takes to replay it.

    *sender* and *recipient* are the party identities of a private message
    (empty for channel messages); *seq* orders items and is given by the
    store.
    """

    target: str
    msgid: str
    time: float
    command: str
    source: str
    params: tuple[str, ...]
    account: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: _NO_TAGS, hash=False)
    sender: str = ""
    recipient: str = ""
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Selector:
    """``msgid=...`` or ``timestamp=...`` in a CHATHISTORY command."""

    msgid: str | None = None
    time: float | None = None


@dataclass(frozen=True, slots=True)
class Query:
    """A CHATHISTORY selection on the stored targets *keys*, or, with no
    keys, on every private conversation of *party* (the target ``*``)."""

    keys: tuple[str, ...]
    subcommand: str
    start: Selector | None
    limit: int
    end: Selector | None = None
    commands: frozenset[str] = MESSAGE_COMMANDS
    party: str = ""


@dataclass(frozen=True, slots=True)
class Search:
    """A message search (soju.im/search) over the stored targets *keys* and,
    when *party* is given, every private conversation of *party*.

    Every word of *text* must be in the message (case-insensitive), *nick*
    (folded) must have sent it, and it must be from between *after* and
    *before* (inclusive).  With *after* the oldest matches come first,
    otherwise the newest; either way the answer is oldest first.
    """

    keys: tuple[str, ...]
    limit: int
    party: str = ""
    text: str = ""
    nick: str = ""
    after: float | None = None
    before: float | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """A CHATHISTORY TARGETS entry: a stored key and its latest message."""

    key: str
    time: float
    #: The other party's nick in a private conversation.
    peer: str = ""


class HistoryStore(Protocol):
    """Where history goes; every read answers with a Deferred."""

    def add(self, item: HistoryItem) -> None:
        """Store *item* (soon: writes may be batched)."""

    def stored(self) -> Deferred[None]:
        """Fires once every item added so far would survive a crash of the
        process (at once for a store that keeps nothing on disk).  A store
        that cannot write now fires it too: its items wait in its buffer."""

    def query(self, query: Query) -> Deferred[list[HistoryItem]]:
        """The items *query* selects, oldest first."""

    def targets(
        self, keys: Sequence[str], party: str, start: float, end: float, limit: int
    ) -> Deferred[list[Target]]:
        """Channels among *keys* and conversations of *party* whose latest
        message is between *start* and *end*, by time of that message."""

    def search(self, search: Search) -> Deferred[list[HistoryItem]]:
        """The PRIVMSG and NOTICE items *search* matches, oldest first."""

    def redact(self, keys: Sequence[str], msgid: str) -> Deferred[bool]:
        """Remove the message *msgid* stored under one of *keys*, and the
        continuation lines of a multiline message (`continuation_prefix`);
        whether anything was removed."""

    def close(self) -> Deferred[None]:
        """Write what is pending and release the store."""


def search_words(text: str, fold_accents: bool = True) -> list[str]:
    """The words of *text* a search matches on: letters and digits, folded,
    and without diacritics (as SQLite FTS5's unicode61 tokenizer sees them)
    unless *fold_accents* is false (PostgreSQL's ``simple`` parser)."""
    folded = text.casefold()
    if fold_accents:
        decomposed = unicodedata.normalize("NFKD", folded)
        folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _WORD.findall(folded)


def sender_nick(item: HistoryItem) -> str:
    """The folded nick that sent *item*."""
    return casefold(item.source.split("!", 1)[0])


def continuation_prefix(msgid: str) -> str:
    """What the msgids of a multiline message's later lines start with."""
    return msgid + "/"


def party(user: object) -> str:
    """The history identity of a connection: its account, else its nick."""
    account = getattr(user, "account", None)
    if account:
        return "a:" + casefold(account)
    return "n:" + casefold(getattr(user, "nick", ""))


def conversation_key(party_a: str, party_b: str) -> str:
    """The stored target of the private conversation between two parties."""
    first, second = sorted((party_a, party_b))
    return f"{first} {second}"


def peer_nick(item: HistoryItem, party: str) -> str:
    """The nick of the other side of private *item*, seen from *party*."""
    if item.sender == party:
        return item.params[0] if item.params else ""
    return item.source.split("!", 1)[0]
