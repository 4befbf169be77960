"""CPU per private message stored in SQLite history, the store alone.

``PYTHONPATH=<checkout> .venv/bin/python bench/history_rows.py`` measures the
store of *checkout* (this one by default): private messages between 1,000
parties, each to one of its 10 neighbours (the conversations of the
``private-storm`` scenario), added in rounds of ``--batch`` and each round
waited for with ``stored()``, as the router does.  It prints the process CPU
time (reactor and worker thread together) per message, in microseconds.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.internet import defer, task

from chat.history import HistoryConfig, HistoryItem, conversation_key, party
from chat.history.sqlite import FILENAME, SQLiteHistory


class _Nick:
    """Just what `party` reads of a connection."""

    account = None

    def __init__(self, nick: str) -> None:
        self.nick = nick


def _items(count: int) -> list[HistoryItem]:
    rng = random.Random(1)
    now = time.time()
    items = []
    for n in range(count):
        one = rng.randrange(1000)
        other = (one + 1 + rng.randrange(10)) % 1000
        sender, recipient = party(_Nick(f"p{one}")), party(_Nick(f"p{other}"))
        items.append(
            HistoryItem(
                target=conversation_key(sender, recipient),
                msgid=f"bench{n:x}",
                time=now + n / 10_000,
                command="PRIVMSG",
                source=f"p{one}!~p{one}@127.0.0.1",
                params=(f"p{other}", f"{one} {n} {time.monotonic_ns()} " + "x" * 40),
                sender=sender,
                recipient=recipient,
            )
        )
    return items


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(reactor: Any, count: int, batch: int) -> dict[str, Any]:
    items = _items(count)
    path = Path(tempfile.mkdtemp(prefix="chat-bench-rows-")) / FILENAME
    store = SQLiteHistory(path, reactor, HistoryConfig(batch_size=batch))
    try:
        store.add(items[0])
        await store.stored()  # the database is made and migrated
        cpu, wall = _cpu(), time.perf_counter()
        for start in range(1, count, batch):
            for item in items[start : start + batch]:
                store.add(item)
            await store.stored()
        cpu, wall = _cpu() - cpu, time.perf_counter() - wall
    finally:
        await store.close()
    return {
        "messages": count - 1,
        "batch": batch,
        "cpu_us_per_message": round(1e6 * cpu / (count - 1), 2),
        "wall_us_per_message": round(1e6 * wall / (count - 1), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=300)

    async def run(reactor: Any) -> None:
        args = parser.parse_args()
        print(json.dumps(await _measure(reactor, args.messages, args.batch)))

    task.react(lambda reactor: defer.ensureDeferred(run(reactor)))


if __name__ == "__main__":
    main()
