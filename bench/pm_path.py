"""CPU of the private-message path in process, without sockets.

``PYTHONPATH=<checkout> .venv/bin/python bench/pm_path.py`` registers 1,000
clients of *checkout*'s server on `StringTransport` (tests.support) and feeds
them ``--messages`` PRIVMSGs, each to one of the sender's 10 neighbours, as
the ``private-storm`` scenario does; it prints the CPU per message, in
microseconds. The history store is replaced by one that keeps nothing:
always durable, or with ``--held`` durable only every 300 messages (what the
router's durability gate costs). ``--caps`` gives every client
``server-time`` and ``message-tags``.
"""

from __future__ import annotations

import argparse
import json
import time

from twisted.internet.defer import Deferred, succeed

from chat.history import HistoryItem
from tests.support import UNPACED, Harness

#: Messages per commit of the ``--held`` store.
BATCH = 300


class _NullStore:
    """Keeps nothing; `stored` fires at once, or at `commit` when *held*."""

    def __init__(self, held: bool) -> None:
        self.held = held
        self.waiters: list[Deferred[None]] = []

    def add(self, item: HistoryItem) -> None:
        pass

    def stored(self) -> Deferred[None]:
        if not self.held:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self.waiters.append(waiter)
        return waiter

    def commit(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            waiter.callback(None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--held", action="store_true")
    parser.add_argument("--caps", action="store_true")
    args = parser.parse_args()
    harness = Harness(limits=UNPACED)
    clients = [harness.register(f"p{n}") for n in range(1000)]
    if args.caps:
        for client in clients:
            client.send("CAP REQ :server-time message-tags")
            client.raw()
    store = _NullStore(args.held)
    harness.server.history = store  # type: ignore[assignment]
    lines = [
        (
            clients[n % 1000].conn,
            b"PRIVMSG p%d :%d %d %d %s\r\n"
            % ((n + 1 + n % 10) % 1000, n, n, time.monotonic_ns(), b"x" * 40),
        )
        for n in range(args.messages)
    ]
    cpu = time.process_time()
    for n, (conn, data) in enumerate(lines, 1):
        conn.dataReceived(data)
        if n % BATCH == 0:
            store.commit()
    store.commit()
    cpu = time.process_time() - cpu
    for client in clients:
        client.raw()
    result = {
        "messages": args.messages,
        "held": args.held,
        "caps": args.caps,
        "cpu_us_per_message": round(1e6 * cpu / args.messages, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
