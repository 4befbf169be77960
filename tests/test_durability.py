"""Nothing acknowledged is lost: a message whose echo reached its sender is
in history after the server process is killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from twisted.trial.unittest import TestCase

from chat.history import HistoryItem
from chat.history.sqlite import FILENAME as HISTORY_FILE
from chat.history.sqlite import SQLiteHistory
from chat.message import Message
from tests.e2e_support import LineClient, connect_plain, is_command

#: The whole service in a child process, plaintext on loopback, history in
#: argv[1]; prints its port once the stores are open.
_SERVER = """
import sys
from dataclasses import replace
from pathlib import Path
from twisted.internet import reactor
from chat.config import Limits, ServerConfig
from chat.service import makeService

config = ServerConfig(
    server_name="irc.test",
    port=None,
    listen=("tcp:0:interface=127.0.0.1",),
    data_dir=Path(sys.argv[1]),
    cert_dir=Path(sys.argv[1]) / "certs",
)
config = replace(
    config,
    limits=replace(
        config.limits,
        flood_burst=100000,
        flood_connect_burst=100000,
        flood_rate=100000.0,
        flood_max_queued=100000,
    ),
)
service = makeService(config, reactor=reactor)
service.startService()

def ready(_):
    print(service.listeners[0].port.getHost().port, flush=True)

service.storage_ready.addCallback(ready)
reactor.run()
"""

BURST = 400
CAPS = "echo-message server-time message-tags batch draft/chathistory"


def _start(case: TestCase, data_dir: Path) -> tuple[subprocess.Popen[str], int]:
    child = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    case.addCleanup(child.wait)
    case.addCleanup(child.kill)
    assert child.stdout is not None
    case.addCleanup(child.stdout.close)
    return child, int(child.stdout.readline())


async def _client(port: int, nick: str) -> LineClient:
    client = await connect_plain(port)
    client.send("CAP", "REQ", CAPS)
    await client.wait_for(is_command("CAP", "*", "ACK"))
    client.send("CAP", "END")
    await client.register(nick)
    return client


class CrashTests(TestCase):
    timeout = 60

    async def test_every_echoed_message_survives_kill_9(self) -> None:
        data_dir = Path(self.mktemp()).absolute()
        child, port = _start(self, data_dir)
        alice = await _client(port, "alice")
        alice.send("JOIN", "#chan")
        await alice.wait_for(is_command("366"))
        for number in range(BURST):
            alice.sendLine(f"PRIVMSG #chan :message {number}".encode())
        await alice.wait_for(lambda m: m.params[-1:] == ("message 0",))
        # Kill the moment some echoes have arrived: the rest may be lost,
        # but not one that was seen.
        await alice.wait_for(lambda m: m.params[-1:] == (f"message {BURST // 4}",))
        os.kill(child.pid, signal.SIGKILL)
        await alice.lost
        echoed = {m.params[-1] for m in alice.received if m.command == "PRIVMSG"}
        self.assertGreater(len(echoed), BURST // 4)

        stored = _stored_texts(data_dir / HISTORY_FILE)
        self.assertEqual(echoed - stored, set(), "echoed but lost in the crash")

        # And a restarted server serves them: the newest echoed one is there.
        _, port = _start(self, data_dir)
        bob = await _client(port, "bob")
        bob.send("JOIN", "#chan")
        await bob.wait_for(is_command("366"))
        bob.send("CHATHISTORY", "LATEST", "#chan", "*", "100")
        await bob.wait_for(
            lambda m: m.command == "BATCH" and m.params[0].startswith("-")
        )
        served = {m.params[-1] for m in bob.received if m.command == "PRIVMSG"}
        newest = max(echoed, key=lambda text: int(text.split()[1]))
        self.assertIn(newest, served)
        bob.transport.loseConnection()
        await bob.lost


def _stored_texts(path: Path) -> set[str]:
    """The texts of the PRIVMSGs in the history database at *path*."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT params FROM history WHERE command = 'PRIVMSG'")
        return {json.loads(params)[-1] for (params,) in rows}
    except sqlite3.OperationalError:  # no table: nothing was ever written
        return set()
    finally:
        db.close()


class GroupCommitTests(TestCase):
    """`SQLiteHistory.stored` fires once the items are committed."""

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.store = SQLiteHistory(Path(self.mktemp()) / "history.db", reactor)
        self.addCleanup(self.store.close)

    def item(self, number: int) -> HistoryItem:
        message = Message("PRIVMSG", ("#chan", f"m{number}"), "a!b@c")
        return HistoryItem(
            target="#chan",
            msgid=f"id{number}",
            time=time.time() + number,
            command=message.command,
            source=message.source or "",
            params=message.params,
            account=None,
            tags={},
        )

    def committed(self) -> int:
        db = sqlite3.connect(self.store.path)
        try:
            return int(db.execute("SELECT count(*) FROM history").fetchone()[0])
        finally:
            db.close()

    async def test_stored_fires_after_the_commit(self) -> None:
        self.store.add(self.item(1))
        waiting = self.store.stored()
        self.assertFalse(waiting.called, "nothing is on disk yet")
        await waiting
        self.assertEqual(self.committed(), 1)

    async def test_items_added_during_a_write_go_in_the_next(self) -> None:
        self.store.add(self.item(1))
        first = self.store.stored()
        self.store.add(self.item(2))
        self.store.add(self.item(3))
        second = self.store.stored()
        await first
        await second
        self.assertEqual(self.committed(), 3)

    def test_nothing_pending_fires_at_once(self) -> None:
        self.assertTrue(self.store.stored().called)


class GateTests(TestCase):
    """The router holds a turn that stored history until it is durable."""

    def test_output_waits_for_durability_and_keeps_its_order(self) -> None:
        from tests.support import Harness, hold_history

        harness = Harness()
        alice, bob = harness.channel_of("alice", "bob")
        pending = hold_history(harness)
        alice.send("PRIVMSG #chan :kept")
        self.assertEqual(bob.lines(), [], "not before it is durable")
        bob.send("PING later")
        self.assertEqual(bob.lines(), [], "nothing overtakes a held message")
        pending[0].callback(None)
        self.assertEqual(
            bob.lines(),
            [
                ":alice!~alice@127.0.0.1 PRIVMSG #chan :kept",
                ":irc.test PONG irc.test later",
            ],
        )
