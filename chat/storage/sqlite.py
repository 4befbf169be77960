"""SQLite storage: ``chat.db`` under the data directory.

`Database` does the SQL, synchronously, on one connection: the admin
command line uses it directly.  `SQLiteStore` is the `Store` the server
uses: every call runs on a single worker thread (one writer, never the
reactor thread) and answers with a Deferred.

Durability: the database runs in WAL mode with ``synchronous=FULL``, so a
transaction is on disk before its Deferred fires.  A client is told
"registered" only after that, and a crash (``kill -9``) or power cut
afterwards cannot lose it; SQLite recovers the WAL on the next open.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from chat.casemap import casefold
from chat.readmarkers import MAX_MARKERS
from chat.storage import (
    Account,
    AccountExistsError,
    ChannelExistsError,
    RegisteredChannel,
    ScramCredentials,
)
from chat.timing import OperationTimer

T = TypeVar("T")

#: The file name of the database in the data directory.
FILENAME = "chat.db"
#: How long a writer waits for another process (the admin tool) to finish.
BUSY_TIMEOUT_MS = 5000

#: Schema migrations, in order; ``PRAGMA user_version`` counts those applied.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE accounts (
        folded TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        scram_salt BLOB,
        scram_iterations INTEGER,
        scram_stored_key BLOB,
        scram_server_key BLOB,
        email TEXT,
        created REAL NOT NULL,
        operator INTEGER NOT NULL DEFAULT 0
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
        registered REAL NOT NULL,
        topic TEXT NOT NULL DEFAULT '',
        topic_set_by TEXT NOT NULL DEFAULT '',
        topic_set_at INTEGER NOT NULL DEFAULT 0,
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
        time REAL NOT NULL,
        PRIMARY KEY (account, target)
    );
    """,
)

_ACCOUNT_COLUMNS = (
    "folded, name, password_hash, scram_salt, scram_iterations, "
    "scram_stored_key, scram_server_key, email, created, operator"
)


class Database:
    """The SQL of accounts and channels on one sqlite3 connection.

    Not thread-safe: use it from one thread at a time.
    """

    def __init__(self, path: Path | str) -> None:
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(
            path, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.migrate()

    def migrate(self) -> int:
        """Apply the migrations not applied yet; return the schema version."""
        version: int = self.db.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], version + 1):
            self.db.executescript(
                f"BEGIN IMMEDIATE; {script}; PRAGMA user_version={number}; COMMIT;"
            )
            version = number
        return version

    def close(self) -> None:
        self.db.close()

    # -- accounts -------------------------------------------------------

    def _account(self, row: tuple[Any, ...] | None) -> Account | None:
        if row is None:
            return None
        folded, name, password_hash, salt, iterations, stored, server = row[:7]
        scram = None
        if salt is not None:
            scram = ScramCredentials(
                bytes(salt), iterations, bytes(stored), bytes(server)
            )
        certfps = tuple(
            fp
            for (fp,) in self.db.execute(
                "SELECT certfp FROM certfps WHERE account = ? ORDER BY certfp",
                (folded,),
            )
        )
        return Account(
            name=name,
            password_hash=password_hash,
            scram=scram,
            email=row[7],
            created=row[8],
            operator=bool(row[9]),
            certfps=certfps,
        )

    def create_account(self, account: Account) -> None:
        scram = account.scram
        try:
            with self.db:
                self.db.execute(
                    f"INSERT INTO accounts ({_ACCOUNT_COLUMNS})"
                    " VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        account.folded,
                        account.name,
                        account.password_hash,
                        scram.salt if scram else None,
                        scram.iterations if scram else None,
                        scram.stored_key if scram else None,
                        scram.server_key if scram else None,
                        account.email,
                        account.created,
                        int(account.operator),
                    ),
                )
                self.db.executemany(
                    "INSERT INTO certfps (certfp, account) VALUES (?, ?)",
                    [(fp, account.folded) for fp in account.certfps],
                )
        except sqlite3.IntegrityError as error:
            raise AccountExistsError(account.name) from error

    def get_account(self, name: str) -> Account | None:
        row = self.db.execute(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE folded = ?",
            (casefold(name),),
        ).fetchone()
        return self._account(row)

    def account_for_certfp(self, certfp: str) -> Account | None:
        row = self.db.execute(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE folded ="
            " (SELECT account FROM certfps WHERE certfp = ?)",
            (certfp.lower(),),
        ).fetchone()
        return self._account(row)

    def list_accounts(self) -> list[Account]:
        rows = self.db.execute(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY folded"
        ).fetchall()
        return [account for row in rows if (account := self._account(row))]

    def _update(self, sql: str, args: Iterable[Any]) -> bool:
        with self.db:
            return self.db.execute(sql, tuple(args)).rowcount > 0

    def set_password(
        self, name: str, password_hash: str, scram: ScramCredentials | None
    ) -> bool:
        return self._update(
            "UPDATE accounts SET password_hash = ?, scram_salt = ?,"
            " scram_iterations = ?, scram_stored_key = ?, scram_server_key = ?"
            " WHERE folded = ?",
            (
                password_hash,
                scram.salt if scram else None,
                scram.iterations if scram else None,
                scram.stored_key if scram else None,
                scram.server_key if scram else None,
                casefold(name),
            ),
        )

    def set_operator(self, name: str, operator: bool) -> bool:
        return self._update(
            "UPDATE accounts SET operator = ? WHERE folded = ?",
            (int(operator), casefold(name)),
        )

    def add_certfp(self, name: str, certfp: str) -> bool:
        try:
            return self._update(
                "INSERT INTO certfps (certfp, account)"
                " SELECT ?, folded FROM accounts WHERE folded = ?",
                (certfp.lower(), casefold(name)),
            )
        except sqlite3.IntegrityError:
            return False

    def remove_certfp(self, name: str, certfp: str) -> bool:
        return self._update(
            "DELETE FROM certfps WHERE certfp = ? AND account = ?",
            (certfp.lower(), casefold(name)),
        )

    def delete_account(self, name: str) -> bool:
        return self._update("DELETE FROM accounts WHERE folded = ?", (casefold(name),))

    # -- read markers ---------------------------------------------------

    def read_markers(self, name: str) -> dict[str, float]:
        rows = self.db.execute(
            "SELECT target, time FROM read_markers WHERE account = ?",
            (casefold(name),),
        ).fetchall()
        return dict(rows)

    def set_read_marker(self, name: str, target: str, time: float) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO read_markers (account, target, time)"
                " SELECT folded, ?, ? FROM accounts WHERE folded = ?"
                " ON CONFLICT (account, target) DO UPDATE SET time = excluded.time"
                " WHERE excluded.time > read_markers.time",
                (target, time, casefold(name)),
            )
            # Keep what the server keeps in memory: the latest MAX_MARKERS.
            self.db.execute(
                "DELETE FROM read_markers WHERE account = ? AND target NOT IN"
                " (SELECT target FROM read_markers WHERE account = ?"
                " ORDER BY time DESC LIMIT ?)",
                (casefold(name), casefold(name), MAX_MARKERS),
            )

    # -- channels -------------------------------------------------------

    def _set_operators(self, folded: str, operators: Iterable[str]) -> None:
        self.db.execute("DELETE FROM channel_operators WHERE channel = ?", (folded,))
        self.db.executemany(
            "INSERT OR IGNORE INTO channel_operators (channel, account)"
            " SELECT ?, folded FROM accounts WHERE folded = ?",
            [(folded, casefold(name)) for name in operators],
        )

    def register_channel(self, channel: RegisteredChannel) -> None:
        try:
            with self.db:
                self.db.execute(
                    "INSERT INTO channels (folded, name, founder, registered, topic,"
                    " topic_set_by, topic_set_at, modes, key, user_limit)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        channel.folded,
                        channel.name,
                        casefold(channel.founder),
                        channel.registered,
                        channel.topic,
                        channel.topic_set_by,
                        channel.topic_set_at,
                        channel.modes,
                        channel.key,
                        channel.limit,
                    ),
                )
                self._set_operators(channel.folded, channel.operators)
        except sqlite3.IntegrityError as error:
            raise ChannelExistsError(channel.name) from error

    def list_channels(self) -> list[RegisteredChannel]:
        operators: dict[str, list[str]] = {}
        for channel, name in self.db.execute(
            "SELECT o.channel, a.name FROM channel_operators o"
            " JOIN accounts a ON a.folded = o.account ORDER BY a.folded"
        ):
            operators.setdefault(channel, []).append(name)
        rows = self.db.execute(
            "SELECT c.folded, c.name, a.name, c.registered, c.topic, c.topic_set_by,"
            " c.topic_set_at, c.modes, c.key, c.user_limit FROM channels c"
            " JOIN accounts a ON a.folded = c.founder ORDER BY c.folded"
        ).fetchall()
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
            for row in rows
        ]

    def update_channel(self, channel: RegisteredChannel) -> bool:
        with self.db:
            changed = (
                self.db.execute(
                    "UPDATE channels SET name = ?, founder = ?, topic = ?,"
                    " topic_set_by = ?, topic_set_at = ?, modes = ?, key = ?,"
                    " user_limit = ? WHERE folded = ?",
                    (
                        channel.name,
                        casefold(channel.founder),
                        channel.topic,
                        channel.topic_set_by,
                        channel.topic_set_at,
                        channel.modes,
                        channel.key,
                        channel.limit,
                        channel.folded,
                    ),
                ).rowcount
                > 0
            )
            if changed:
                self._set_operators(channel.folded, channel.operators)
            return changed

    def drop_channel(self, name: str) -> bool:
        return self._update("DELETE FROM channels WHERE folded = ?", (casefold(name),))


class SQLiteStore:
    """The `Store` on an SQLite database.

    Given a *reactor*, every call runs on one worker thread and the Deferred
    fires on the reactor thread.  Without one (tests driving the protocol
    synchronously, usually with ``":memory:"``), calls run at once on the
    calling thread and return fired Deferreds.
    """

    def __init__(
        self, path: Path | str, reactor: IReactorFromThreads | None = None
    ) -> None:
        self._path = path
        self._reactor = reactor
        self._pool: ThreadPool | None = None
        #: Database calls and their time, for the metrics page.
        self.timer = OperationTimer()
        if reactor is not None:
            self._pool = ThreadPool(minthreads=1, maxthreads=1, name="chat-storage")
            self._pool.start()
        self._database: Database | None = None
        self._closed = False

    @classmethod
    def in_directory(cls, data_dir: Path, reactor: IReactorFromThreads) -> SQLiteStore:
        """The store of a server whose data directory is *data_dir*."""
        return cls(data_dir / FILENAME, reactor)

    def _call(self, method: Callable[..., T], *args: Any) -> T:
        """Run *method* on the database, opening it on first use."""
        if self._database is None:
            self._database = Database(self._path)
        return method(self._database, *args)

    def _run(self, method: Callable[..., T], *args: Any) -> Deferred[T]:
        if self._closed:
            return fail(RuntimeError("the store is closed"))
        if self._pool is None or self._reactor is None:
            return maybeDeferred(self.timer.timed, self._call, method, *args)
        return deferToThreadPool(
            self._reactor, self._pool, self.timer.timed, self._call, method, *args
        )

    def _close_database(self) -> None:
        if self._database is not None:
            self._database.close()
            self._database = None

    def close(self) -> Deferred[None]:
        if self._closed:
            return succeed(None)
        self._closed = True
        pool, reactor = self._pool, self._reactor
        if pool is None or reactor is None:
            self._close_database()
            return succeed(None)
        done = deferToThreadPool(reactor, pool, self._close_database)

        def stop(result: object) -> object:
            pool.stop()
            return result

        return done.addBoth(stop)

    # -- accounts -------------------------------------------------------

    def create_account(self, account: Account) -> Deferred[None]:
        return self._run(Database.create_account, account)

    def get_account(self, name: str) -> Deferred[Account | None]:
        return self._run(Database.get_account, name)

    def account_for_certfp(self, certfp: str) -> Deferred[Account | None]:
        return self._run(Database.account_for_certfp, certfp)

    def list_accounts(self) -> Deferred[list[Account]]:
        return self._run(Database.list_accounts)

    def set_password(
        self, name: str, password_hash: str, scram: ScramCredentials | None
    ) -> Deferred[bool]:
        return self._run(Database.set_password, name, password_hash, scram)

    def set_operator(self, name: str, operator: bool) -> Deferred[bool]:
        return self._run(Database.set_operator, name, operator)

    def add_certfp(self, name: str, certfp: str) -> Deferred[bool]:
        return self._run(Database.add_certfp, name, certfp)

    def remove_certfp(self, name: str, certfp: str) -> Deferred[bool]:
        return self._run(Database.remove_certfp, name, certfp)

    def delete_account(self, name: str) -> Deferred[bool]:
        return self._run(Database.delete_account, name)

    # -- read markers ---------------------------------------------------

    def read_markers(self, name: str) -> Deferred[dict[str, float]]:
        return self._run(Database.read_markers, name)

    def set_read_marker(self, name: str, target: str, time: float) -> Deferred[None]:
        return self._run(Database.set_read_marker, name, target, time)

    # -- channels -------------------------------------------------------

    def register_channel(self, channel: RegisteredChannel) -> Deferred[None]:
        return self._run(Database.register_channel, channel)

    def list_channels(self) -> Deferred[list[RegisteredChannel]]:
        return self._run(Database.list_channels)

    def update_channel(self, channel: RegisteredChannel) -> Deferred[bool]:
        return self._run(Database.update_channel, channel)

    def drop_channel(self, name: str) -> Deferred[bool]:
        return self._run(Database.drop_channel, name)
