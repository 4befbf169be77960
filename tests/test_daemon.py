"""Daemon mode: a real ``twistd chat`` process with pidfile and logfile."""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from twisted.internet.task import deferLater
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from chat.tls import DEV_CA_FILE
from tests.e2e_support import connect_tls, is_command, reactor

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
    """Poll *condition* (a callable) every 50 ms, failing after `DEADLINE`."""
    for _ in range(int(DEADLINE / 0.05)):
        if condition():
            return
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"timed out waiting for {what}")


class DaemonTests(TestCase):
    async def test_daemon_starts_serves_and_stops_on_sigterm(self) -> None:
        rundir = Path(self.mktemp()).resolve()
        rundir.mkdir()
        pidfile, logfile = rundir / "chat.pid", rundir / "chat.log"
        port = free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            [
                "-c",
                "from twisted.scripts.twistd import run; run()",
                "--pidfile",
                str(pidfile),
                "--logfile",
                str(logfile),
                "chat",
                "--listen",
                f"tls:tcp:{port}:interface=127.0.0.1",
                "--server-name",
                "daemon.test",
            ],
            env=env,
            path=str(rundir),
        )
        self.assertEqual(code, 0, (out, err))
        pid = int(pidfile.read_text())
        self.addCleanup(lambda: running(pid) and os.kill(pid, signal.SIGKILL))

        client = await connect_tls(port, rundir / "certs" / DEV_CA_FILE)
        await client.register("daemonic")
        log = logfile.read_text()
        self.assertIn("DEVELOPMENT CERTIFICATE", log)
        self.assertIn(f"--port {port} --ca", log)

        os.kill(pid, signal.SIGTERM)
        error = await client.wait_for(is_command("ERROR"))
        self.assertIn("Server shutting down", error.params[0])
        await client.lost
        await until(lambda: not running(pid), "the daemon to exit")
        self.assertFalse(pidfile.exists())
        self.assertIn("Server Shut Down.", logfile.read_text())
