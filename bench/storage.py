"""``python -m bench.storage``: the stores on SQLite and on PostgreSQL.

For each backend: history throughput (messages added as fast as possible,
then one `stored()`, i.e. group commits), the latency of `stored()` for one
message at a time (what the router adds to a delivery that waits for
durability), and the latency of an account lookup.  PostgreSQL is a
throwaway server (fsync on, PostgreSQL's defaults) started with
``tests/services_support.py`` unless ``--database`` names one.  Prints one
JSON line per backend and a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorFromThreads

from chat.config import SQLITE
from chat.history import HistoryConfig, HistoryItem
from chat.storage import Account
from chat.storage.factory import open_stores


def _item(n: int) -> HistoryItem:
    return HistoryItem(
        target="#bench",
        msgid=f"m{n}",
        time=time.time(),
        command="PRIVMSG",
        source="alice!~alice@127.0.0.1",
        params=("#bench", f"message number {n} with some words in it"),
        account="alice",
        tags={},
    )


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _measure(reactor: Any, database: str, messages: int, rounds: int) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="chat-bench-storage-"))
    threads = cast(IReactorFromThreads, reactor)
    stores = open_stores(database, data_dir, threads, HistoryConfig(max_age=0))
    history, accounts = stores.history, stores.accounts
    try:
        await accounts.create_account(Account("alice", "scrypt$x", created=1.0))
        history.add(_item(0))
        await history.stored()
        start = time.perf_counter()
        for n in range(messages):
            history.add(_item(n))
        await history.stored()
        throughput = messages / (time.perf_counter() - start)
        stored: list[float] = []
        lookups: list[float] = []
        for n in range(rounds):
            history.add(_item(n))
            start = time.perf_counter()
            await history.stored()
            stored.append(time.perf_counter() - start)
            start = time.perf_counter()
            await accounts.get_account("alice")
            lookups.append(time.perf_counter() - start)
    finally:
        await history.close()
        await accounts.close()
    name = "sqlite" if database == SQLITE else "postgresql"
    return {
        "backend": name,
        "history_messages_per_s": round(throughput),
        "stored_p50_ms": round(_percentile(stored, 0.5) * 1000, 2),
        "stored_p99_ms": round(_percentile(stored, 0.99) * 1000, 2),
        "account_lookup_p50_ms": round(_percentile(lookups, 0.5) * 1000, 2),
        "account_lookup_p99_ms": round(_percentile(lookups, 0.99) * 1000, 2),
    }


def _throwaway_postgres() -> str:
    """A durable (fsync on) PostgreSQL of tests/services_support.py, stopped
    at exit; the URI of an empty database on it."""
    sys.path.insert(0, str(Path(__file__).parent.parent))
    import atexit

    from tests import services_support

    bin_dir = services_support.postgres_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed: give --database")
    server = services_support.PostgresServer(bin_dir, durable=True)
    atexit.register(server.destroy)
    server.init()
    server.start()
    return server.create_database()


async def _main(reactor: Any, args: argparse.Namespace) -> None:
    database = args.database or _throwaway_postgres()
    results = []
    for backend in (SQLITE, database):
        result = await _measure(reactor, backend, args.messages, args.rounds)
        print(json.dumps(result), flush=True)
        results.append(result)
    columns = list(results[0])
    print(" | ".join(columns))
    for result in results:
        print(" | ".join(str(result[column]) for column in columns))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.storage")
    parser.add_argument("--database", help="a PostgreSQL URI (default: a throwaway)")
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=500)
    args = parser.parse_args(argv)
    task.react(lambda reactor: defer.Deferred.fromCoroutine(_main(reactor, args)))


if __name__ == "__main__":
    main()
