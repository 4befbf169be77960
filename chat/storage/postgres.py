"""PostgreSQL storage: accounts and registered channels on a server database.

`Pool` is a `twisted.enterprise.adbapi.ConnectionPool` of psycopg 3
connections with one worker thread: calls run there in the order they were
made (as on SQLite's single writer), never on the reactor thread.  It does
its own transactions instead of adbapi's ``runInteraction`` so that a lost
connection is dropped and reopened on the next call, and so that every
failure to reach the server comes out as `StoreUnavailableError`.

`migrate` applies the schema migrations of one component (``accounts``,
``history``), counted in the ``schema_versions`` table, under an advisory
lock, so that nodes starting together migrate once.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool

from chat.casemap import casefold
from chat.readmarkers import MAX_MARKERS
from chat.storage import (
    Account,
    AccountExistsError,
    ChannelExistsError,
    RegisteredChannel,
    ScramCredentials,
    StoreUnavailableError,
)
from chat.timing import OperationTimer

T = TypeVar("T")

#: libpq settings a URI may override: a connection attempt fails after 5 s,
#: unacknowledged data after 10 s (a blackholed network fails calls instead
#: of hanging them), and keepalives find a dead idle connection in 20 s.
CONNECTION_DEFAULTS: dict[str, str | int] = {
    "connect_timeout": 5,
    "tcp_user_timeout": 10000,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 2,
}

#: Seconds a connection may sit unused before it is checked on next use.
IDLE_CHECK = 1.0

#: A database cursor of the pool's thread.
Cursor = psycopg.Cursor[Any]


def connection_string(dsn: str, name: str) -> str:
    """*dsn* with `CONNECTION_DEFAULTS` and an application name by default."""
    params = conninfo_to_dict(dsn)
    for key, value in CONNECTION_DEFAULTS.items():
        params.setdefault(key, value)
    params.setdefault("application_name", f"chat-server {name}")
    return make_conninfo("", **params)


class Pool:
    """Transactions on one worker thread of an adbapi connection pool."""

    def __init__(self, dsn: str, reactor: IReactorFromThreads, name: str) -> None:
        self.reactor = reactor
        self.name = name
        #: Database calls and their time, for the metrics page.
        self.timer = OperationTimer()
        self._pool = adbapi.ConnectionPool(
            "psycopg",
            connection_string(dsn, name),
            cp_min=1,
            cp_max=1,
            cp_noisy=False,
            cp_reactor=reactor,
        )
        self._closed = False
        #: When the pool's thread last used its connection (monotonic).
        self._used_at = float("-inf")

    def run(self, work: Callable[..., T], *args: Any) -> Deferred[T]:
        """Run ``work(cursor, *args)`` in a transaction on the pool's thread."""
        if self._closed:
            return fail(RuntimeError(f"the {self.name} store is closed"))
        return deferToThreadPool(
            self.reactor,
            self._pool.threadpool,
            self.timer.timed,
            self._transaction,
            work,
            *args,
        )

    def _connection(self) -> psycopg.Connection[Any]:
        """The pool thread's connection, checked first if it sat idle.

        A connection left over from before a server restart fails on first
        use: after `IDLE_CHECK` seconds unused, a ``SELECT 1`` finds that
        out and a new connection replaces it, so the call is not lost.
        """
        try:
            conn: psycopg.Connection[Any] = self._pool.connect()
            if time.monotonic() - self._used_at > IDLE_CHECK:
                try:
                    conn.execute("SELECT 1")
                    conn.rollback()
                except psycopg.OperationalError:
                    self._pool.disconnect(conn)
                    conn = self._pool.connect()
        except psycopg.OperationalError as error:
            raise StoreUnavailableError(f"PostgreSQL: {error}") from error
        return conn

    def _transaction(self, work: Callable[..., T], *args: Any) -> T:
        """The pool's thread: one transaction, committed if *work* returns."""
        conn = self._connection()
        try:
            with conn.cursor() as cursor:
                result = work(cursor, *args)
            conn.commit()
            return result
        except BaseException as error:
            if conn.broken or conn.closed:
                self._pool.disconnect(conn)
                raise StoreUnavailableError(f"PostgreSQL: {error}") from error
            conn.rollback()
            raise
        finally:
            self._used_at = time.monotonic()

    def close(self) -> Deferred[None]:
        """Let queued calls finish, then close the connection and the thread."""
        if self._closed:
            return succeed(None)
        done = deferToThreadPool(self.reactor, self._pool.threadpool, lambda: None)
        self._closed = True

        def stop(result: object) -> None:
            # The thread is idle: stopping it and closing its connection
            # does not wait on the database.
            self._pool.close()

        return done.addBoth(stop)


#: The advisory lock held while migrating (one for every component, so
#: that two of them never create ``schema_versions`` at once).
SCHEMA_LOCK = zlib.crc32(b"chat-server schema")


def migrate(cursor: Cursor, component: str, migrations: Sequence[str]) -> int:
    """Apply *component*'s migrations not applied yet; the schema version."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS schema_versions ("
        " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    cursor.execute(
        "SELECT version FROM schema_versions WHERE component = %s", (component,)
    )
    row = cursor.fetchone()
    version = int(row[0]) if row else 0
    for number, script in enumerate(migrations[version:], version + 1):
        cursor.execute(script)
        version = number
    cursor.execute(
        "INSERT INTO schema_versions (component, version) VALUES (%s, %s)"
        " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
        (component, version),
    )
    return version


#: Schema migrations of the accounts and channels, in order.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE accounts (
        folded TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        scram_salt BYTEA,
        scram_iterations INTEGER,
        scram_stored_key BYTEA,
        scram_server_key BYTEA,
        email TEXT,
        created DOUBLE PRECISION NOT NULL,
        operator BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE TABLE certfps (
        certfp TEXT PRIMARY KEY,
        account TEXT NOT NULL REFERENCES accounts (folded) ON DELETE CASCADE
    );
    CREATE INDEX certfps_account ON certfps (account);
    CREATE TABLE channels (
        folded TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        founder TEXT NOT NULL REFERENCES accounts (folded) ON DELETE CASCADE,
        registered DOUBLE PRECISION NOT NULL,
        topic TEXT NOT NULL DEFAULT '',
        topic_set_by TEXT NOT NULL DEFAULT '',
        topic_set_at BIGINT NOT NULL DEFAULT 0,
        modes TEXT NOT NULL DEFAULT '',
        key TEXT,
        user_limit INTEGER
    );
    CREATE INDEX channels_founder ON channels (founder);
    CREATE TABLE channel_operators (
        channel TEXT NOT NULL REFERENCES channels (folded) ON DELETE CASCADE,
        account TEXT NOT NULL REFERENCES accounts (folded) ON DELETE CASCADE,
        PRIMARY KEY (channel, account)
    );
    CREATE INDEX channel_operators_account ON channel_operators (account);
    """,
    """
    CREATE TABLE read_markers (
        account TEXT NOT NULL REFERENCES accounts (folded) ON DELETE CASCADE,
        target TEXT NOT NULL,
        time DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (account, target)
    );
    """,
)

_ACCOUNT_COLUMNS = (
    "folded, name, password_hash, scram_salt, scram_iterations, "
    "scram_stored_key, scram_server_key, email, created, operator"
)


def _scram_values(scram: ScramCredentials | None) -> tuple[Any, ...]:
    if scram is None:
        return (None, None, None, None)
    return (scram.salt, scram.iterations, scram.stored_key, scram.server_key)


def _account(cursor: Cursor, row: Sequence[Any] | None) -> Account | None:
    if row is None:
        return None
    folded, name, password_hash, salt, iterations, stored, server = row[:7]
    scram = None
    if salt is not None:
        scram = ScramCredentials(bytes(salt), iterations, bytes(stored), bytes(server))
    cursor.execute(
        "SELECT certfp FROM certfps WHERE account = %s ORDER BY certfp", (folded,)
    )
    return Account(
        name=name,
        password_hash=password_hash,
        scram=scram,
        email=row[7],
        created=row[8],
        operator=bool(row[9]),
        certfps=tuple(fp for (fp,) in cursor.fetchall()),
    )


def _create_account(cursor: Cursor, account: Account) -> None:
    try:
        _insert_account(cursor, account)
    except psycopg.IntegrityError as error:
        raise AccountExistsError(account.name) from error


def _insert_account(cursor: Cursor, account: Account) -> None:
    cursor.execute(
        f"INSERT INTO accounts ({_ACCOUNT_COLUMNS})"
        " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
        (
            account.folded,
            account.name,
            account.password_hash,
            *_scram_values(account.scram),
            account.email,
            account.created,
            account.operator,
        ),
    )
    cursor.executemany(
        "INSERT INTO certfps (certfp, account) VALUES (%s, %s)",
        [(fp, account.folded) for fp in account.certfps],
    )


def _get_account(cursor: Cursor, name: str) -> Account | None:
    cursor.execute(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE folded = %s",
        (casefold(name),),
    )
    return _account(cursor, cursor.fetchone())


def _account_for_certfp(cursor: Cursor, certfp: str) -> Account | None:
    cursor.execute(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE folded ="
        " (SELECT account FROM certfps WHERE certfp = %s)",
        (certfp.lower(),),
    )
    return _account(cursor, cursor.fetchone())


def _list_accounts(cursor: Cursor) -> list[Account]:
    cursor.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY folded")
    rows = cursor.fetchall()
    return [account for row in rows if (account := _account(cursor, row))]


def _update(cursor: Cursor, sql: str, args: Iterable[Any]) -> bool:
    cursor.execute(sql, tuple(args))
    return cursor.rowcount > 0


def _set_password(
    cursor: Cursor, name: str, password_hash: str, scram: ScramCredentials | None
) -> bool:
    return _update(
        cursor,
        "UPDATE accounts SET password_hash = %s, scram_salt = %s,"
        " scram_iterations = %s, scram_stored_key = %s, scram_server_key = %s"
        " WHERE folded = %s",
        (password_hash, *_scram_values(scram), casefold(name)),
    )


def _set_operator(cursor: Cursor, name: str, operator: bool) -> bool:
    return _update(
        cursor,
        "UPDATE accounts SET operator = %s WHERE folded = %s",
        (operator, casefold(name)),
    )


def _add_certfp(cursor: Cursor, name: str, certfp: str) -> bool:
    return _update(
        cursor,
        "INSERT INTO certfps (certfp, account)"
        " SELECT %s, folded FROM accounts WHERE folded = %s"
        " ON CONFLICT (certfp) DO NOTHING",
        (certfp.lower(), casefold(name)),
    )


def _remove_certfp(cursor: Cursor, name: str, certfp: str) -> bool:
    return _update(
        cursor,
        "DELETE FROM certfps WHERE certfp = %s AND account = %s",
        (certfp.lower(), casefold(name)),
    )


def _delete_account(cursor: Cursor, name: str) -> bool:
    return _update(cursor, "DELETE FROM accounts WHERE folded = %s", (casefold(name),))


def _read_markers(cursor: Cursor, name: str) -> dict[str, float]:
    cursor.execute(
        "SELECT target, time FROM read_markers WHERE account = %s", (casefold(name),)
    )
    return dict(cursor.fetchall())


def _set_read_marker(cursor: Cursor, name: str, target: str, time: float) -> None:
    folded = casefold(name)
    cursor.execute(
        "INSERT INTO read_markers (account, target, time)"
        " SELECT folded, %s, %s FROM accounts WHERE folded = %s"
        " ON CONFLICT (account, target) DO UPDATE SET time = excluded.time"
        " WHERE excluded.time > read_markers.time",
        (target, time, folded),
    )
    # Keep what the server keeps in memory: the latest MAX_MARKERS.
    cursor.execute(
        "DELETE FROM read_markers WHERE account = %s AND target NOT IN"
        " (SELECT target FROM read_markers WHERE account = %s"
        " ORDER BY time DESC LIMIT %s)",
        (folded, folded, MAX_MARKERS),
    )


def _set_operators(cursor: Cursor, folded: str, operators: Iterable[str]) -> None:
    cursor.execute("DELETE FROM channel_operators WHERE channel = %s", (folded,))
    cursor.executemany(
        "INSERT INTO channel_operators (channel, account)"
        " SELECT %s, folded FROM accounts WHERE folded = %s"
        " ON CONFLICT DO NOTHING",
        [(folded, casefold(name)) for name in operators],
    )


def _channel_values(channel: RegisteredChannel) -> tuple[Any, ...]:
    return (
        channel.name,
        casefold(channel.founder),
        channel.topic,
        channel.topic_set_by,
        channel.topic_set_at,
        channel.modes,
        channel.key,
        channel.limit,
    )


def _register_channel(cursor: Cursor, channel: RegisteredChannel) -> None:
    try:
        cursor.execute(
            "INSERT INTO channels (name, founder, topic, topic_set_by,"
            " topic_set_at, modes, key, user_limit, folded, registered)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            (*_channel_values(channel), channel.folded, channel.registered),
        )
        _set_operators(cursor, channel.folded, channel.operators)
    except psycopg.IntegrityError as error:
        raise ChannelExistsError(channel.name) from error


def _list_channels(cursor: Cursor) -> list[RegisteredChannel]:
    operators: dict[str, list[str]] = {}
    cursor.execute(
        "SELECT o.channel, a.name FROM channel_operators o"
        " JOIN accounts a ON a.folded = o.account ORDER BY a.folded"
    )
    for channel, name in cursor.fetchall():
        operators.setdefault(channel, []).append(name)
    cursor.execute(
        "SELECT c.folded, c.name, a.name, c.registered, c.topic, c.topic_set_by,"
        " c.topic_set_at, c.modes, c.key, c.user_limit FROM channels c"
        " JOIN accounts a ON a.folded = c.founder ORDER BY c.folded"
    )
    return [
        RegisteredChannel(
            name=row[1],
            founder=row[2],
            registered=row[3],
            topic=row[4],
            topic_set_by=row[5],
            topic_set_at=row[6],
            modes=row[7],
            key=row[8],
            limit=row[9],
            operators=tuple(operators.get(row[0], ())),
        )
        for row in cursor.fetchall()
    ]


def _update_channel(cursor: Cursor, channel: RegisteredChannel) -> bool:
    changed = _update(
        cursor,
        "UPDATE channels SET name = %s, founder = %s, topic = %s,"
        " topic_set_by = %s, topic_set_at = %s, modes = %s, key = %s,"
        " user_limit = %s WHERE folded = %s",
        (*_channel_values(channel), channel.folded),
    )
    if changed:
        _set_operators(cursor, channel.folded, channel.operators)
    return changed


def _drop_channel(cursor: Cursor, name: str) -> bool:
    return _update(cursor, "DELETE FROM channels WHERE folded = %s", (casefold(name),))


class PostgresStore:
    """The `Store` on a PostgreSQL database (see the module docstring).

    The schema is migrated by the first call; a call made while the server
    cannot be reached fails with `StoreUnavailableError`, and the next one
    connects again.
    """

    def __init__(self, dsn: str, reactor: IReactorFromThreads) -> None:
        self.pool = Pool(dsn, reactor, "accounts")
        self.timer = self.pool.timer
        self._migrated = False

    def _run(self, work: Callable[..., T], *args: Any) -> Deferred[T]:
        return self.pool.run(self._migrated_first, work, *args)

    def _migrated_first(self, cursor: Cursor, work: Callable[..., T], *args: Any) -> T:
        """The pool's thread: migrate once, in the first transaction."""
        if not self._migrated:
            migrate(cursor, "accounts", MIGRATIONS)
            cursor.connection.commit()
            self._migrated = True
        return work(cursor, *args)

    def close(self) -> Deferred[None]:
        return self.pool.close()

    # -- accounts -------------------------------------------------------

    def create_account(self, account: Account) -> Deferred[None]:
        return self._run(_create_account, account)

    def get_account(self, name: str) -> Deferred[Account | None]:
        return self._run(_get_account, name)

    def account_for_certfp(self, certfp: str) -> Deferred[Account | None]:
        return self._run(_account_for_certfp, certfp)

    def list_accounts(self) -> Deferred[list[Account]]:
        return self._run(_list_accounts)

    def set_password(
        self, name: str, password_hash: str, scram: ScramCredentials | None
    ) -> Deferred[bool]:
        return self._run(_set_password, name, password_hash, scram)

    def set_operator(self, name: str, operator: bool) -> Deferred[bool]:
        return self._run(_set_operator, name, operator)

    def add_certfp(self, name: str, certfp: str) -> Deferred[bool]:
        return self._run(_add_certfp, name, certfp)

    def remove_certfp(self, name: str, certfp: str) -> Deferred[bool]:
        return self._run(_remove_certfp, name, certfp)

    def delete_account(self, name: str) -> Deferred[bool]:
        return self._run(_delete_account, name)

    # -- read markers ---------------------------------------------------

    def read_markers(self, name: str) -> Deferred[dict[str, float]]:
        return self._run(_read_markers, name)

    def set_read_marker(self, name: str, target: str, time: float) -> Deferred[None]:
        return self._run(_set_read_marker, name, target, time)

    # -- channels -------------------------------------------------------

    def register_channel(self, channel: RegisteredChannel) -> Deferred[None]:
        return self._run(_register_channel, channel)

    def list_channels(self) -> Deferred[list[RegisteredChannel]]:
        return self._run(_list_channels)

    def update_channel(self, channel: RegisteredChannel) -> Deferred[bool]:
        return self._run(_update_channel, channel)

    def drop_channel(self, name: str) -> Deferred[bool]:
        return self._run(_drop_channel, name)


class PostgresDatabase:
    """The accounts on one psycopg connection, synchronously (an
    `AccountDatabase`, for the admin command line); the schema is migrated
    on open.  Raises `StoreUnavailableError` if the server cannot be
    reached."""

    def __init__(self, dsn: str) -> None:
        try:
            self.conn = psycopg.connect(connection_string(dsn, "admin"))
        except psycopg.OperationalError as error:
            raise StoreUnavailableError(f"PostgreSQL: {error}") from error
        self._call(migrate, "accounts", MIGRATIONS)

    def _call(self, work: Callable[..., T], *args: Any) -> T:
        try:
            with self.conn.cursor() as cursor:
                result = work(cursor, *args)
            self.conn.commit()
            return result
        except BaseException:
            self.conn.rollback()
            raise

    def close(self) -> None:
        self.conn.close()

    def create_account(self, account: Account) -> None:
        self._call(_create_account, account)

    def get_account(self, name: str) -> Account | None:
        return self._call(_get_account, name)

    def list_accounts(self) -> list[Account]:
        return self._call(_list_accounts)

    def set_password(
        self, name: str, password_hash: str, scram: ScramCredentials | None
    ) -> bool:
        return self._call(_set_password, name, password_hash, scram)

    def set_operator(self, name: str, operator: bool) -> bool:
        return self._call(_set_operator, name, operator)

    def delete_account(self, name: str) -> bool:
        return self._call(_delete_account, name)
