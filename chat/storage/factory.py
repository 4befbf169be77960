"""The stores of a server, chosen by its ``database`` setting.

Like Synapse's ``create_engine``, this is the one place that names a
storage backend: ``sqlite`` (the default) keeps ``chat.db`` and
``history.db`` in the data directory; a ``postgresql://`` URI keeps both
in that PostgreSQL database.  Everything else sees only the `Store`,
`HistoryStore` and (for the admin tool) `AccountDatabase` interfaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from twisted.internet.interfaces import IReactorFromThreads

from chat.config import SQLITE
from chat.history import HistoryConfig, HistoryStore
from chat.storage import AccountDatabase, Store


@dataclass(frozen=True, slots=True)
class Stores:
    """Where accounts and channels go, and where history goes."""

    accounts: Store
    history: HistoryStore


def describe(database: str, data_dir: Path) -> str:
    """Where the stores are, for the log: never the password."""
    if database == SQLITE:
        return f"SQLite in {data_dir}"
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(database)
    user = params.get("user", "")
    host = params.get("host", "localhost")
    port = params.get("port", "5432")
    name = params.get("dbname", user)
    return f"PostgreSQL {user}@{host}:{port}/{name}"


def open_stores(
    database: str,
    data_dir: Path,
    reactor: IReactorFromThreads,
    history: HistoryConfig,
) -> Stores:
    """The stores *database* names (`chat.config.check_database` checked it)."""
    if database == SQLITE:
        from chat.history.sqlite import FILENAME, SQLiteHistory
        from chat.storage.sqlite import SQLiteStore

        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return Stores(
            SQLiteStore.in_directory(data_dir, reactor),
            SQLiteHistory(data_dir / FILENAME, reactor, history),
        )
    from chat.history.postgres import PostgresHistory
    from chat.storage.postgres import PostgresStore

    return Stores(
        PostgresStore(database, reactor), PostgresHistory(database, reactor, history)
    )


def open_account_database(database: str, data_dir: Path) -> AccountDatabase:
    """The accounts of *database*, synchronously, for the admin tool; raises
    `chat.storage.StoreUnavailableError` if PostgreSQL cannot be reached."""
    if database == SQLITE:
        from chat.storage.sqlite import FILENAME, Database

        return Database(data_dir / FILENAME)
    from chat.storage.postgres import PostgresDatabase

    return PostgresDatabase(database)
