"""PostgreSQL history: the ``history`` table of a server database.

Like the SQLite store, writes wait in memory for
`HistoryConfig.flush_interval` seconds (or until `HistoryConfig.batch_size`
are waiting) and go in one transaction on the pool's single thread;
`stored` asks for a write at once and fires when it is committed (group
commit: one write at a time, the items added meanwhile go in the next).
Reads wait for the pending writes, so a client reads what it was just sent.

While PostgreSQL cannot be reached, the writes wait in a `WriteBuffer` of
at most `HistoryConfig.max_buffered` messages (the oldest are dropped past
that, and counted) and are tried again every `HistoryConfig.retry_interval`
seconds, doubling; they are written in their order once it is back.  A
message is kept once per target whatever happens: a write whose commit
was lost with the connection may be sent again, and a message stored by
two nodes of a cluster is one row (``UNIQUE (target, msgid)``).
Meanwhile `stored` fires at once (deliveries do not wait for a database
that is away, nor more than `HistoryConfig.max_stored_wait` seconds for one
that does not answer) and reads fail (CHATHISTORY answers
``MESSAGE_ERROR``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorFromThreads, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

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
from chat.history.buffer import WriteBuffer
from chat.history.rows import COLUMNS, INSERT_COLUMNS, bound, item_row, row_item
from chat.history.select import Point, select_rows
from chat.storage import StoreUnavailableError
from chat.storage.postgres import Cursor, Pool, migrate

T = TypeVar("T")

#: Schema migrations of the history, in order.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE history (
        seq BIGSERIAL PRIMARY KEY,
        target TEXT NOT NULL,
        msgid TEXT NOT NULL,
        time DOUBLE PRECISION NOT NULL,
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
    CREATE UNIQUE INDEX history_once ON history (target, msgid);
    CREATE INDEX history_time ON history (time);
    CREATE INDEX history_sender ON history (sender) WHERE sender != '';
    CREATE INDEX history_recipient ON history (recipient) WHERE recipient != '';
    """,
)

#: The folded nick of a row's source, as `chat.casemap` folds (rfc1459).
_SENDER_NICK = "lower(translate(split_part(source, '!', 1), '[]\\~', '{}|^'))"
#: The longest wait between two write attempts, in retry intervals.
MAX_BACKOFF = 32


class _Database:
    """The SQL of the history; every method runs on the pool's thread."""

    def __init__(self, config: HistoryConfig) -> None:
        self.config = config
        self.migrated = False
        #: Targets written since the last retention pass.
        self._untrimmed: set[str] = set()
        self._trimmed_at = float("-inf")

    def migrate(self, cursor: Cursor) -> None:
        if not self.migrated:
            migrate(cursor, "history", MIGRATIONS)
            cursor.connection.commit()
            self.migrated = True

    def write(self, cursor: Cursor, items: list[HistoryItem], now: float) -> None:
        self.migrate(cursor)
        cursor.executemany(
            f"INSERT INTO history ({INSERT_COLUMNS})"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
            " ON CONFLICT (target, msgid) DO NOTHING",
            [item_row(item) for item in items],
        )
        self._untrimmed.update(item.target for item in items)
        if now - self._trimmed_at >= self.config.trim_interval:
            self._trim(cursor, now)

    def _trim(self, cursor: Cursor, now: float) -> None:
        """Apply retention, at most once per trim interval."""
        if self.config.max_age:
            cursor.execute(
                "DELETE FROM history WHERE time < %s", (now - self.config.max_age,)
            )
        for target in self._untrimmed:
            cursor.execute(
                "DELETE FROM history WHERE target = %s AND seq <= (SELECT seq"
                " FROM history WHERE target = %s ORDER BY seq DESC"
                " LIMIT 1 OFFSET %s)",
                (target, target, self.config.max_per_target),
            )
        self._untrimmed.clear()
        self._trimmed_at = now

    def select(self, cursor: Cursor, query: Query, now: float) -> list[HistoryItem]:
        self.migrate(cursor)
        if query.keys:
            where = "target = ANY(%s)"
            where_args: tuple[Any, ...] = (list(query.keys),)
        else:
            where = "(sender = %s OR recipient = %s)"
            where_args = (query.party, query.party)
        base = f"{where} AND command = ANY(%s) AND time >= %s"
        oldest = now - self.config.max_age if self.config.max_age else float("-inf")
        base_args: list[Any] = [*where_args, sorted(query.commands), oldest]

        def resolve(msgid: str) -> Point | None:
            cursor.execute(
                f"SELECT time, seq FROM history WHERE msgid = %s AND {where}",
                (msgid, *where_args),
            )
            row = cursor.fetchone()
            return Point(row[0], row[1]) if row else None

        def point(selector: Selector) -> Point | None:
            if selector.msgid is not None:
                return resolve(selector.msgid)
            return Point(selector.time or 0.0)

        def rows(
            bounds: list[tuple[str, Point]], limit: int, newest: bool
        ) -> list[HistoryItem]:
            where = [bound(at, op, "%s") for op, at in bounds]
            clauses = " AND ".join([base, *(clause for clause, _ in where)])
            order = "DESC" if newest else "ASC"
            cursor.execute(
                f"SELECT {COLUMNS} FROM history WHERE {clauses}"
                f" ORDER BY seq {order} LIMIT %s",
                (*base_args, *(value for _, value in where), limit),
            )
            items = [row_item(row) for row in cursor.fetchall()]
            return items[::-1] if newest else items

        return select_rows(query, point, rows)

    def targets(
        self,
        cursor: Cursor,
        keys: list[str],
        party: str,
        low: float,
        high: float,
        limit: int,
    ) -> list[Target]:
        self.migrate(cursor)
        # A target is listed only if its latest message is inside the window.
        cursor.execute(
            "SELECT target, max(seq) FROM history"
            " WHERE target = ANY(%s) OR sender = %s OR recipient = %s"
            " GROUP BY target HAVING max(time) > %s AND max(time) < %s"
            " ORDER BY max(seq) ASC LIMIT %s",
            (keys, party, party, low, high, limit),
        )
        found = cursor.fetchall()
        targets: list[Target] = []
        for key, seq in found:
            cursor.execute(f"SELECT {COLUMNS} FROM history WHERE seq = %s", (seq,))
            item = row_item(cursor.fetchone() or ())
            peer = "" if key in keys else peer_nick(item, party)
            targets.append(Target(key, item.time, peer))
        return targets

    def redact(self, cursor: Cursor, keys: list[str], msgid: str) -> bool:
        self.migrate(cursor)
        # The continuation lines `msgid/n` are the msgids in [msgid/, msgid0).
        cursor.execute(
            "DELETE FROM history WHERE target = ANY(%s)"
            " AND (msgid = %s OR (msgid >= %s AND msgid < %s))",
            (keys, msgid, continuation_prefix(msgid), msgid + "0"),
        )
        return cursor.rowcount > 0

    def search(self, cursor: Cursor, search: Search, now: float) -> list[HistoryItem]:
        self.migrate(cursor)
        party = search.party or None  # '' would match every channel row
        clauses = [
            "(target = ANY(%s) OR sender = %s OR recipient = %s)",
            "command IN ('PRIVMSG', 'NOTICE')",
        ]
        args: list[Any] = [list(search.keys), party, party]
        if self.config.max_age:
            clauses.append("time >= %s")
            args.append(now - self.config.max_age)
        if search.after is not None:
            clauses.append("time >= %s")
            args.append(search.after)
        if search.before is not None:
            clauses.append("time <= %s")
            args.append(search.before)
        if search.nick:
            clauses.append(f"{_SENDER_NICK} = %s")
            args.append(search.nick)
        words = search_words(search.text, fold_accents=False)
        if words:
            # Letters and digits only: never tsquery syntax.
            clauses.append(
                "to_tsvector('simple', params::jsonb ->> -1)"
                " @@ to_tsquery('simple', %s)"
            )
            args.append(" & ".join(words))
        order = "ASC" if search.after is not None else "DESC"
        cursor.execute(
            f"SELECT {COLUMNS} FROM history WHERE {' AND '.join(clauses)}"
            f" ORDER BY seq {order} LIMIT %s",
            (*args, search.limit),
        )
        items = [row_item(row) for row in cursor.fetchall()]
        return items if search.after is not None else items[::-1]


class PostgresHistory:
    """A `HistoryStore` in PostgreSQL; see the module docstring."""

    log = Logger()

    def __init__(
        self,
        dsn: str,
        reactor: IReactorFromThreads,
        config: HistoryConfig | None = None,
        clock: IReactorTime | None = None,
    ) -> None:
        #: Timers and timestamps (the reactor unless a test gives a Clock).
        self.clock: IReactorTime = clock or cast(IReactorTime, reactor)
        self.config = config or HistoryConfig()
        self.pool = Pool(dsn, reactor, "history")
        #: Database calls (batched writes, reads) and their time, for metrics.
        self.timer = self.pool.timer
        #: Messages waiting to be written; its size and drops are metrics.
        self.buffer = WriteBuffer(self.config.max_buffered)
        self._database = _Database(self.config)
        self._flush_call: IDelayedCall | None = None
        #: Group commit: one write runs at a time; `stored` waiters of the
        #: items in it, and of the items waiting behind it.
        self._writing = False
        self._in_flight: list[Deferred[None]] = []
        self._waiting: list[Deferred[None]] = []
        #: While the database is away: the wait before the next attempt.
        self._backoff: float | None = None
        #: A write has run longer than `HistoryConfig.max_stored_wait`:
        #: `stored` no longer waits for it.
        self._slow = False
        self._slow_call: IDelayedCall | None = None
        self._closed = False

    # -- writes ---------------------------------------------------------

    def add(self, item: HistoryItem) -> None:
        if self._closed:
            return  # the server is stopping: nothing can be written any more
        self.buffer.add(item)
        if self._backoff is not None or self._writing:
            return  # the retry timer, or the end of the write, goes on
        if len(self.buffer) >= self.config.batch_size:
            self._flush()
        elif self._flush_call is None:
            self._schedule(self.config.flush_interval)

    def stored(self) -> Deferred[None]:
        """Fires once what was added so far is committed (group commit: the
        items added while one transaction runs go together in the next).
        While the database is away, or a write has taken longer than
        `HistoryConfig.max_stored_wait`, it fires at once: the items wait in
        the buffer, or in the write."""
        if self._backoff is not None or self._slow:
            return succeed(None)
        return self._written_so_far()

    def _written_so_far(self) -> Deferred[None]:
        """Fires once a write of what was added so far has ended."""
        if self._closed or not (len(self.buffer) or self._writing):
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        if len(self.buffer):
            self._waiting.append(waiter)
            self._flush()
        else:
            self._in_flight.append(waiter)
        return waiter

    def _schedule(self, delay: float) -> None:
        self._flush_call = self.clock.callLater(delay, self._flush)

    def _flush(self) -> None:
        """Start writing every waiting message in one transaction, unless a
        write is running (its end starts the next one)."""
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        if self._writing or not len(self.buffer):
            return
        batch = self.buffer.take()
        self._in_flight, self._waiting = self._waiting, []
        self._writing = True
        items = [item for _, item in batch]
        writing = self.pool.run(self._database.write, items, self.clock.seconds())
        self._slow_call = self.clock.callLater(
            self.config.max_stored_wait, self._too_slow
        )
        writing.addCallbacks(self._written, self._not_written, (), {}, (batch,))
        writing.addBoth(self._done)

    def _too_slow(self) -> None:
        """The running write takes too long: stop holding deliveries for it."""
        self._slow_call = None
        self._slow = True
        self.log.warn(
            "A history write has taken more than {seconds} s: deliveries go on"
            " without waiting for the database",
            seconds=self.config.max_stored_wait,
        )
        waiters = self._in_flight + self._waiting
        self._in_flight, self._waiting = [], []
        for waiter in waiters:
            waiter.callback(None)

    def _written(self, result: None) -> None:
        if self._backoff is not None:
            self._backoff = None
            self.log.info("PostgreSQL is back: history is written again")

    def _not_written(
        self, failure: Failure, batch: list[tuple[int, HistoryItem]]
    ) -> None:
        if not failure.check(StoreUnavailableError):
            self.buffer.dropped += len(batch)
            self.log.failure(
                "Could not store {count} history items", failure, count=len(batch)
            )
            return
        self.buffer.put_back(batch)
        if self._backoff is None:
            self._backoff = self.config.retry_interval
            self.log.warn(
                "History writes wait in memory ({count} now, at most {limit}): {error}",
                count=len(self.buffer),
                limit=self.buffer.limit,
                error=str(failure.value),
            )
        else:
            self._backoff = min(
                2 * self._backoff, MAX_BACKOFF * self.config.retry_interval
            )

    def _done(self, _: object) -> None:
        """A write ended: answer its waiters, then start what comes next."""
        self._writing = False
        self._slow = False
        if self._slow_call is not None and self._slow_call.active():
            self._slow_call.cancel()
        self._slow_call = None
        waiters, self._in_flight = self._in_flight, []
        if self._backoff is not None:
            waiters += self._waiting
            self._waiting = []
        for waiter in waiters:
            waiter.callback(None)
        if self._closed or self._flush_call is not None or not len(self.buffer):
            return
        if self._backoff is not None:
            self._schedule(self._backoff)
        elif self._waiting or len(self.buffer) >= self.config.batch_size:
            self._flush()
        else:
            self._schedule(self.config.flush_interval)

    # -- reads ----------------------------------------------------------

    def _after_writes(self, work: Callable[[], Deferred[T]]) -> Deferred[T]:
        """Run *work* once what was added so far is written: reads see it.

        While the database is away, a read tries the waiting writes again
        first (the database may be back before the retry timer says so).
        """
        if not (len(self.buffer) or self._writing):
            return work()
        return self._written_so_far().addCallback(lambda _: work())

    def query(self, query: Query) -> Deferred[list[HistoryItem]]:
        return self._after_writes(
            lambda: self.pool.run(self._database.select, query, self.clock.seconds())
        )

    def targets(
        self, keys: Sequence[str], party: str, start: float, end: float, limit: int
    ) -> Deferred[list[Target]]:
        low, high = min(start, end), max(start, end)
        return self._after_writes(
            lambda: self.pool.run(
                self._database.targets, list(keys), party, low, high, limit
            )
        )

    def search(self, search: Search) -> Deferred[list[HistoryItem]]:
        return self._after_writes(
            lambda: self.pool.run(self._database.search, search, self.clock.seconds())
        )

    def redact(self, keys: Sequence[str], msgid: str) -> Deferred[bool]:
        return self._after_writes(
            lambda: self.pool.run(self._database.redact, list(keys), msgid)
        )

    def close(self) -> Deferred[None]:
        """Write what is waiting (once more), then release the database."""
        if self._closed:
            return succeed(None)
        flushed = self._written_so_far()  # one more try, even if it is away
        self._closed = True

        def release(_: object) -> Deferred[None]:
            if self._flush_call is not None and self._flush_call.active():
                self._flush_call.cancel()
            self._flush_call = None
            if len(self.buffer):
                self.log.warn(
                    "{count} history items were not written: the database is away",
                    count=len(self.buffer),
                )
            return self.pool.close()

        return flushed.addBoth(release)
