"""Smoke test: the real client in tmux against a real server process.

Needs the Debian package ``tmux`` (CI installs it).  The server runs as
``python -m twisted chat`` in a temporary directory, where it writes its
development CA; the client, started in the same directory, trusts that CA
because it connects to localhost.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import cast

from twisted.internet import reactor as _reactor
from twisted.internet.interfaces import IReactorTime
from twisted.trial.unittest import SkipTest, TestCase

from tests.client_support import eventually, free_port

reactor = cast(IReactorTime, _reactor)
ROOT = Path(__file__).resolve().parent.parent


class Tmux:
    """One private tmux server (its own socket) with one window."""

    def __init__(self, name: str) -> None:
        self.socket = name

    def run(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-u", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "main")

    def alive(self) -> bool:
        return "main" in self.run("list-sessions", "-F", "#{session_name}")

    def type(self, text: str) -> None:
        """Type *text* then Enter, as separate key presses."""
        self.run("send-keys", "-t", "main", "-l", text)
        self.run("send-keys", "-t", "main", "Enter")

    def kill(self) -> None:
        self.run("kill-server")


class TmuxSmokeTests(TestCase):
    def setUp(self) -> None:
        if shutil.which("tmux") is None:
            if os.environ.get("CI"):
                raise AssertionError("tmux must be installed in CI")
            raise SkipTest("tmux is not installed (Debian package tmux)")
        self.workdir = Path(self.mktemp()).resolve()
        self.workdir.mkdir(parents=True)
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "twisted",
                "chat",
                "--listen",
                f"tls:tcp:{self.port}:interface=127.0.0.1",
            ],
            cwd=self.workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(self._stop_server)
        self.tmux = Tmux(f"chat-smoke-{os.getpid()}-{self.port}")
        self.addCleanup(self.tmux.kill)

    def _stop_server(self) -> None:
        self.server.terminate()
        self.server.wait(10)

    def _listening(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def start_client(self, nick: str, *options: str) -> None:
        command = " ".join(
            [
                "LANG=C.UTF-8",
                f"PYTHONPATH={ROOT}",
                f"XDG_CONFIG_HOME={self.workdir / 'config'}",
                f"XDG_STATE_HOME={self.workdir / 'state'}",
                sys.executable,
                "-m",
                "chat.client",
                "--host localhost",
                f"--port {self.port}",
                f"--nick {nick}",
                *options,
            ]
        )
        self.tmux.run(
            "new-session", "-d", "-s", "main", "-x", "100", "-y", "20",
            "-c", str(self.workdir), command,
        )  # fmt: skip

    async def test_type_a_message_and_read_it_back(self) -> None:
        await eventually(self._listening, "the server to listen")
        self.start_client("smoke", "--join '#smoke'")
        await eventually(lambda: "You joined #smoke" in self.tmux.screen(), "the join")
        screen = self.tmux.screen()
        self.assertIn("[smoke]", screen)
        self.assertIn("[TLS verified]", screen)
        self.assertNotIn("UNVERIFIED", screen)
        self.tmux.type("hello from tmux 日本語")
        await eventually(
            lambda: "<smoke> hello from tmux 日本語" in self.tmux.screen(),
            "the message",
        )
        self.tmux.type("/quit")
        await eventually(lambda: not self.tmux.alive(), "the client to exit")
        log = self.workdir / "state" / "chat-client" / "client.log"
        self.assertEqual(log.read_text(), "", "no errors, so nothing in client.log")

    async def shown(self, text: str) -> None:
        await eventually(lambda: text in self.tmux.screen(), repr(text))

    async def test_click_a_buffer_and_scroll_with_the_wheel(self) -> None:
        await eventually(self._listening, "the server to listen")
        self.start_client("mouse", "--join '#first,#second'")
        await eventually(
            lambda: "[2:#first]" in self.tmux.screen(), "the join of #first"
        )
        await eventually(lambda: "#second" in self.tmux.screen(), "#second")
        for number in range(4):
            # One at a time: lines typed together would be taken for a paste.
            self.tmux.type(f"long message {number}: " + "words " * 60 + f"END{number}")
            await self.shown(f"END{number}")
        # xterm SGR mouse reports, as a terminal sends them: wheel up over
        # the messages, then a left click on the buffer list's third row.
        self.tmux.run("send-keys", "-t", "main", "-l", "\x1b[<64;40;10M")
        await eventually(
            lambda: "more below" in self.tmux.screen(), "the view to scroll"
        )
        self.assertNotIn("END3", self.tmux.screen())
        self.tmux.run("send-keys", "-t", "main", "-l", "\x1b[<0;4;4M\x1b[<0;4;4m")
        await eventually(lambda: "[3:#second]" in self.tmux.screen(), "the click")
        self.tmux.type("/quit")
        await eventually(lambda: not self.tmux.alive(), "the client to exit")
