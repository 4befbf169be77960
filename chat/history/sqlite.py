"""SQLite history: ``history.db`` under the data directory.

Every database call runs on one worker thread, never on the reactor: writes
wait in memory for `HistoryConfig.flush_interval` seconds (or until
`HistoryConfig.batch_size` are waiting) and go in one transaction, so
storing history costs message delivery only a list append.  `stored` asks
for a write at once and fires when it is committed (the router holds a
message's deliveries until then); one write runs at a time and the items
added meanwhile go in the next (group commit).  Reads wait for the pending
writes, so a client always reads what it was just sent.  The database runs
in WAL mode with ``synchronous=NORMAL``: a committed write survives a crash
of the process (not of the machine).  Retention by age and by count is
applied at most once per trim interval.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from chat.history import (
    HistoryConfig,
    HistoryItem,
    Query,
    Search,
    Selector,
    Target,
    continuation_prefix,
    peer_nick,
    search_words,
)
from chat.history.rows import COLUMNS, INSERT_COLUMNS, bound, item_row, row_item
from chat.history.select import Point, select_rows
from chat.timing import OperationTimer

T = TypeVar("T")

#: The file name of the history database in the data directory.
FILENAME = "history.db"

#: Schema migrations; ``PRAGMA user_version`` says how many have run.
MIGRATIONS = (
    """
    CREATE TABLE history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        target TEXT NOT NULL,
        msgid TEXT NOT NULL,
        time REAL NOT NULL,
        command TEXT NOT NULL,
        source TEXT NOT NULL,
        params TEXT NOT NULL,
        account TEXT,
        tags TEXT NOT NULL,
        sender TEXT NOT NULL,
        recipient TEXT NOT NULL
    );
    CREATE INDEX history_target ON history (target, seq);
    CREATE INDEX history_msgid ON history (msgid);
    CREATE INDEX history_time ON history (time);
    CREATE INDEX history_sender ON history (sender) WHERE sender != '';
    CREATE INDEX history_recipient ON history (recipient) WHERE recipient != '';
    """,
    # Full-text search (soju.im/search): the text of every PRIVMSG and
    # NOTICE, kept in step with the history table by triggers.
    """
    CREATE VIRTUAL TABLE history_text USING fts5 (text, tokenize = 'unicode61');
    CREATE TRIGGER history_text_insert AFTER INSERT ON history
    WHEN new.command IN ('PRIVMSG', 'NOTICE')
    BEGIN
        INSERT INTO history_text (rowid, text)
        VALUES (new.seq, json_extract(new.params, '$[#-1]'));
    END;
    CREATE TRIGGER history_text_delete AFTER DELETE ON history
    WHEN old.command IN ('PRIVMSG', 'NOTICE')
    BEGIN
        DELETE FROM history_text WHERE rowid = old.seq;
    END;
    INSERT INTO history_text (rowid, text)
    SELECT seq, json_extract(params, '$[#-1]') FROM history
    WHERE command IN ('PRIVMSG', 'NOTICE');
    """,
    # The text is indexed once per batch (`_INDEX_TEXT`) rather than by a
    # trigger: FTS5 flushes its pending terms at each statement a trigger
    # runs in, which cost ~20 us per message, more than the row itself.
    """
    DROP TRIGGER history_text_insert;
    """,
    # The private conversations of each party, in place of the indexes on
    # sender and recipient: those cost two index entries on random pages
    # per private message, this one row per new conversation (`_PARTIES`).
    """
    CREATE TABLE parties (
        party TEXT NOT NULL,
        target TEXT NOT NULL,
        PRIMARY KEY (party, target)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO parties (party, target)
    SELECT sender, target FROM history WHERE sender != ''
    UNION ALL SELECT recipient, target FROM history WHERE recipient != '';
    DROP INDEX history_sender;
    DROP INDEX history_recipient;
    """,
)

#: Index the text of the PRIVMSG and NOTICE rows after a given seq.
_INDEX_TEXT = (
    "INSERT INTO history_text (rowid, text)"
    " SELECT seq, json_extract(params, '$[#-1]') FROM history"
    " WHERE seq > ? AND command IN ('PRIVMSG', 'NOTICE')"
)
#: Record the parties of the private messages after a given seq.
_PARTIES = (
    "INSERT OR IGNORE INTO parties (party, target)"
    " SELECT sender, target FROM history WHERE seq > ?1 AND sender != ''"
    " UNION ALL SELECT recipient, target FROM history"
    " WHERE seq > ?1 AND recipient != ''"
)
#: Forget the parties of conversations with no message left (retention and
#: redaction forget who talked to whom along with what was said).
_FORGET_PARTIES = (
    "DELETE FROM parties WHERE NOT EXISTS"
    " (SELECT 1 FROM history WHERE history.target = parties.target)"
)
#: The stored targets of the private conversations of a party.
_CONVERSATIONS = "target IN (SELECT target FROM parties WHERE party = ?)"

#: The folded nick of a row's source, as `chat.casemap` folds (rfc1459).
_SENDER_NICK = (
    "lower(replace(replace(replace(replace("
    "substr(source, 1, instr(source, '!') - 1),"
    " '[', '{'), ']', '}'), '\\', '|'), '~', '^'))"
)


class SQLiteHistory:
    """A `HistoryStore` in an SQLite file, written off the reactor thread."""

    log = Logger()

    def __init__(
        self, path: Path, reactor: Any, config: HistoryConfig | None = None
    ) -> None:
        self.path = path
        self.reactor = reactor
        self.config = config or HistoryConfig()
        self._pending: list[HistoryItem] = []
        #: Database calls (batched writes, reads) and their time, for metrics.
        self.timer = OperationTimer()
        #: Worker-thread state: targets written since the last retention pass.
        self._untrimmed: set[str] = set()
        self._trimmed_at = float("-inf")
        self._flush_call: IDelayedCall | None = None
        #: Group commit: one write runs at a time; `stored` waiters of the
        #: items in it, and of the items pending behind it.
        self._writing = False
        self._in_flight: list[Deferred[None]] = []
        self._waiting: list[Deferred[None]] = []
        self._db: sqlite3.Connection | None = None
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name="chat-history")
        self._pool.start()
        self._closed = False
        # Never leave the worker thread behind, even if nobody calls close().
        self._trigger = reactor.addSystemEventTrigger("during", "shutdown", self.close)

    # -- the worker thread ---------------------------------------------

    def _run(self, work: Callable[..., T], *args: Any) -> Deferred[T]:
        return deferToThreadPool(
            self.reactor, self._pool, self.timer.timed, work, *args
        )

    def _connection(self) -> sqlite3.Connection:
        """The database, opened and migrated on first use (worker thread)."""
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], version + 1):
                db.executescript(
                    f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;"
                )
            self._db = db
        return self._db

    def _write(self, items: list[HistoryItem], now: float) -> None:
        db = self._connection()
        with db:
            # AUTOINCREMENT: the new rows' seqs are above every seq so far.
            last = db.execute("SELECT coalesce(max(seq), 0) FROM history").fetchone()
            db.executemany(
                f"INSERT INTO history ({INSERT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [item_row(item) for item in items],
            )
            db.execute(_INDEX_TEXT, last)
            db.execute(_PARTIES, last)
            self._untrimmed.update(item.target for item in items)
            if now - self._trimmed_at >= self.config.trim_interval:
                self._trim(db, now)

    def _trim(self, db: sqlite3.Connection, now: float) -> None:
        """Apply retention (worker thread), at most once per trim interval.

        Trimming after every batch cost a DELETE per target per 50 ms, a
        third of the throughput of a private-message storm.
        """
        if self.config.max_age:
            expired = db.execute(
                "DELETE FROM history WHERE time < ?", (now - self.config.max_age,)
            )
            if expired.rowcount:
                db.execute(_FORGET_PARTIES)
        for target in self._untrimmed:
            db.execute(
                "DELETE FROM history WHERE target = ? AND seq <= (SELECT seq"
                " FROM history WHERE target = ? ORDER BY seq DESC"
                " LIMIT 1 OFFSET ?)",
                (target, target, self.config.max_per_target),
            )
        self._untrimmed.clear()
        self._trimmed_at = now

    def _select(self, query: Query, now: float) -> list[HistoryItem]:
        db = self._connection()
        if query.keys:
            where = f"target IN ({','.join('?' * len(query.keys))})"
            where_args: tuple[str, ...] = query.keys
        else:
            where = _CONVERSATIONS
            where_args = (query.party,)
        commands = ",".join("?" * len(query.commands))
        base = f"{where} AND command IN ({commands}) AND time >= ?"
        oldest = now - self.config.max_age if self.config.max_age else float("-inf")
        base_args: list[Any] = [*where_args, *sorted(query.commands), oldest]

        def resolve(msgid: str) -> Point | None:
            row = db.execute(
                f"SELECT time, seq FROM history WHERE msgid = ? AND {where}",
                (msgid, *where_args),
            ).fetchone()
            return Point(row[0], row[1]) if row else None

        def point(selector: Selector) -> Point | None:
            if selector.msgid is not None:
                return resolve(selector.msgid)
            return Point(selector.time or 0.0)

        def rows(
            bounds: list[tuple[str, Point]], limit: int, newest: bool
        ) -> list[HistoryItem]:
            where = [bound(at, op, "?") for op, at in bounds]
            clauses = " AND ".join([base, *(clause for clause, _ in where)])
            order = "DESC" if newest else "ASC"
            found = db.execute(
                f"SELECT {COLUMNS} FROM history WHERE {clauses}"
                f" ORDER BY seq {order} LIMIT ?",
                (*base_args, *(value for _, value in where), limit),
            ).fetchall()
            items = [row_item(row) for row in found]
            return items[::-1] if newest else items

        return select_rows(query, point, rows)

    def _targets(
        self, keys: Sequence[str], party: str, low: float, high: float, limit: int
    ) -> list[Target]:
        db = self._connection()
        marks = ",".join("?" * len(keys)) or "NULL"
        # A target is listed only if its latest message is inside the window.
        found = db.execute(
            f"SELECT target, max(seq) FROM history"
            f" WHERE target IN ({marks}) OR {_CONVERSATIONS}"
            " GROUP BY target HAVING max(time) > ? AND max(time) < ?"
            " ORDER BY max(seq) ASC LIMIT ?",
            (*keys, party, low, high, limit),
        ).fetchall()
        targets: list[Target] = []
        for key, seq in found:
            row = db.execute(
                f"SELECT {COLUMNS} FROM history WHERE seq = ?", (seq,)
            ).fetchone()
            item = row_item(row)
            peer = "" if key in keys else peer_nick(item, party)
            targets.append(Target(key, item.time, peer))
        return targets

    def _search(self, search: Search, now: float) -> list[HistoryItem]:
        db = self._connection()
        marks = ",".join("?" * len(search.keys)) or "NULL"
        clauses = [
            f"(target IN ({marks}) OR {_CONVERSATIONS})",
            "command IN ('PRIVMSG', 'NOTICE')",
        ]
        party = search.party or None  # '' would match every channel row
        args: list[Any] = [*search.keys, party]
        if self.config.max_age:
            clauses.append("time >= ?")
            args.append(now - self.config.max_age)
        if search.after is not None:
            clauses.append("time >= ?")
            args.append(search.after)
        if search.before is not None:
            clauses.append("time <= ?")
            args.append(search.before)
        if search.nick:
            clauses.append(f"{_SENDER_NICK} = ?")
            args.append(search.nick)
        words = search_words(search.text)
        if words:
            # Each word quoted: user text is never FTS5 query syntax.
            clauses.append(
                "seq IN (SELECT rowid FROM history_text WHERE history_text MATCH ?)"
            )
            args.append(" ".join(f'"{word}"' for word in words))
        order = "ASC" if search.after is not None else "DESC"
        found = db.execute(
            f"SELECT {COLUMNS} FROM history WHERE {' AND '.join(clauses)}"
            f" ORDER BY seq {order} LIMIT ?",
            (*args, search.limit),
        ).fetchall()
        items = [row_item(row) for row in found]
        return items if search.after is not None else items[::-1]

    def _redact(self, keys: Sequence[str], msgid: str) -> bool:
        db = self._connection()
        marks = ",".join("?" * len(keys)) or "NULL"
        prefix = continuation_prefix(msgid)
        # The continuation lines `msgid/n` are the msgids in [msgid/, msgid0).
        with db:
            cursor = db.execute(
                f"DELETE FROM history WHERE target IN ({marks})"
                " AND (msgid = ? OR (msgid >= ? AND msgid < ?))",
                (*keys, msgid, prefix, msgid + "0"),
            )
            if cursor.rowcount:
                db.execute(f"{_FORGET_PARTIES} AND target IN ({marks})", keys)
        return cursor.rowcount > 0

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- the reactor thread --------------------------------------------

    def add(self, item: HistoryItem) -> None:
        if self._closed:
            return  # the server is stopping: nothing can be written any more
        self._pending.append(item)
        if self._writing:
            return  # `_written` starts the next write, or its timer
        if len(self._pending) >= self.config.batch_size:
            self._flush()
        elif self._flush_call is None:
            self._flush_call = self.reactor.callLater(
                self.config.flush_interval, self._flush
            )

    def stored(self) -> Deferred[None]:
        """Fires once what was added so far is committed (group commit: the
        items added while one transaction runs go together in the next)."""
        if self._closed or not (self._pending or self._writing):
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        if self._pending:
            self._waiting.append(waiter)
            if not self._writing:
                self._flush()
        else:
            self._in_flight.append(waiter)
        return waiter

    def _flush(self) -> None:
        """Start writing the pending items, unless a write is running (its
        end starts the next one)."""
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        if self._writing or not self._pending:
            return
        items, self._pending = self._pending, []
        self._in_flight, self._waiting = self._waiting, []
        self._writing = True
        done = self._run(self._write, items, self.reactor.seconds())
        done.addErrback(
            lambda failure: self.log.failure(
                "Could not store {count} history items", failure, count=len(items)
            )
        )
        done.addBoth(self._written)

    def _written(self, _: object) -> None:
        self._writing = False
        waiters, self._in_flight = self._in_flight, []
        for waiter in waiters:
            waiter.callback(None)
        if self._waiting or len(self._pending) >= self.config.batch_size:
            self._flush()
        elif self._pending and self._flush_call is None:
            self._flush_call = self.reactor.callLater(
                self.config.flush_interval, self._flush
            )

    def _after_writes(self, work: Callable[[], Deferred[T]]) -> Deferred[T]:
        """Run *work* once what was added so far is written: reads see it."""
        if not (self._pending or self._writing):
            return work()
        return self.stored().addCallback(lambda _: work())

    def query(self, query: Query) -> Deferred[list[HistoryItem]]:
        return self._after_writes(
            lambda: self._run(self._select, query, self.reactor.seconds())
        )

    def targets(
        self, keys: Sequence[str], party: str, start: float, end: float, limit: int
    ) -> Deferred[list[Target]]:
        low, high = min(start, end), max(start, end)
        return self._after_writes(
            lambda: self._run(self._targets, list(keys), party, low, high, limit)
        )

    def search(self, search: Search) -> Deferred[list[HistoryItem]]:
        return self._after_writes(
            lambda: self._run(self._search, search, self.reactor.seconds())
        )

    def redact(self, keys: Sequence[str], msgid: str) -> Deferred[bool]:
        return self._after_writes(lambda: self._run(self._redact, list(keys), msgid))

    def close(self) -> Deferred[None]:
        """Write what is pending, close the database and stop the thread."""
        if self._closed:
            return succeed(None)
        self.reactor.removeSystemEventTrigger(self._trigger)
        done = self._after_writes(lambda: self._run(self._close))
        self._closed = True

        def stop(result: None) -> None:
            self._pool.stop()
            return result

        return done.addBoth(stop)
