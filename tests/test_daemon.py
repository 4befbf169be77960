"""Daemon mode: a real ``twistd chat`` process with pidfile and logfile."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from twisted.internet.task import deferLater
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from chat.tls import DEV_CA_FILE
from tests.e2e_support import LineClient, connect_tls, is_command, reactor

ROOT = Path(__file__).resolve().parent.parent
#: Seconds the daemon gets to start or stop.
DEADLINE = 20.0


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll *condition* every 50 ms, failing after `DEADLINE`."""
    for _ in range(int(DEADLINE / 0.05)):
        if condition():
            return
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Daemon:
    pid: int
    port: int
    rundir: Path
    pidfile: Path
    logfile: Path

    async def client(self, nick: str) -> LineClient:
        client = await connect_tls(self.port, self.rundir / "certs" / DEV_CA_FILE)
        await client.register(nick)
        return client

    async def stop(self, client: LineClient) -> None:
        """SIGTERM: *client* gets ERROR, the process exits, the pidfile goes."""
        os.kill(self.pid, signal.SIGTERM)
        error = await client.wait_for(is_command("ERROR"))
        assert "Server shutting down" in error.params[0], error
        await client.lost
        await until(lambda: not running(self.pid), "the daemon to exit")
        assert not self.pidfile.exists()


async def start_daemon(case: TestCase, *chat_args: str) -> Daemon:
    """``twistd --pidfile --logfile chat --listen ...`` in a fresh directory."""
    rundir = Path(case.mktemp()).resolve()
    rundir.mkdir()
    pidfile, logfile = rundir / "chat.pid", rundir / "chat.log"
    port = free_port()
    out, err, code = await getProcessOutputAndValue(
        sys.executable,
        [
            "-c",
            "from twisted.scripts.twistd import run; run()",
            f"--pidfile={pidfile}",
            f"--logfile={logfile}",
            "chat",
            f"--listen=tls:tcp:{port}:interface=127.0.0.1",
            *chat_args,
        ],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        path=str(rundir),
    )
    case.assertEqual(code, 0, (out, err))
    pid = int(pidfile.read_text())
    case.addCleanup(lambda: running(pid) and os.kill(pid, signal.SIGKILL))
    return Daemon(pid, port, rundir, pidfile, logfile)


class DaemonTests(TestCase):
    async def test_starts_serves_and_stops_on_sigterm(self) -> None:
        daemon = await start_daemon(self, "--server-name=daemon.test")
        client = await daemon.client("daemonic")
        log = daemon.logfile.read_text()
        self.assertIn("DEVELOPMENT CERTIFICATE", log)
        self.assertIn(f"--port {daemon.port} --ca", log)
        await daemon.stop(client)
        self.assertIn("Server Shut Down.", daemon.logfile.read_text())

    async def test_connect_hint_works_from_where_the_server_runs(self) -> None:
        daemon = await start_daemon(self)
        [hint] = [
            line.split("Connect with: ", 1)[1]
            for line in daemon.logfile.read_text().splitlines()
            if "Connect with: " in line
        ]
        argv = shlex.split(hint)
        self.assertEqual(argv[1:3], ["-m", "chat.client"])
        self.assertEqual(argv[argv.index("--port") + 1], str(daemon.port))
        self.assertTrue((daemon.rundir / argv[argv.index("--ca") + 1]).is_file())
        # The same interpreter and module start (--help: no terminal needed).
        out, err, code = await getProcessOutputAndValue(
            argv[0],
            [*argv[1:], "--help"],
            env=dict(os.environ),
            path=str(daemon.rundir),
        )
        self.assertEqual(code, 0, err)
        self.assertIn(b"--ca", out)
        await daemon.stop(await daemon.client("hinted"))

    async def test_json_log_lines(self) -> None:
        daemon = await start_daemon(self, "--log-format=json")
        await daemon.stop(await daemon.client("jason"))
        events = [json.loads(line) for line in daemon.logfile.read_text().splitlines()]
        messages = [event["message"] for event in events]
        self.assertTrue(any("DEVELOPMENT CERTIFICATE" in m for m in messages), messages)
        self.assertIn("Server Shut Down.", messages)
        for event in events:
            self.assertLessEqual({"time", "level", "event", "message"}, set(event))
            self.assertFalse([key for key in event if key.startswith("log_")], event)
        names = [event["event"] for event in events]
        for name in ("connect", "register", "disconnect"):
            self.assertIn(name, names)
        [connect] = [event for event in events if event["event"] == "connect"]
        self.assertEqual(connect["address"], "127.0.0.1")
        self.assertRegex(connect["tls"], r"^TLSv1\.[23]$")
        [listening] = [e for e in events if e.get("description", "").startswith("tls")]
        self.assertEqual(listening["address"], f"127.0.0.1:{daemon.port}")
