"""Interop: WeeChat logs in with SASL PLAIN over TLS (weechat-headless)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import cast

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.interfaces import IReactorProcess
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from chat.accounts import Accounts
from tests.accounts_support import PASSWORD, TEST_COST
from tests.e2e_support import start_server

WEECHAT = shutil.which("weechat-headless")


class Ended(ProcessProtocol):
    """Fires `ended` when the process is gone."""

    def __init__(self) -> None:
        self.ended: Deferred[None] = Deferred()

    def processEnded(self, reason: Failure) -> None:
        reason.trap(ProcessDone, ProcessTerminated)
        self.ended.callback(None)


class WeeChatTests(TestCase):
    def setUp(self) -> None:
        if WEECHAT is None:
            self.skipTest(
                "weechat-headless is not installed (apt install weechat-headless)"
            )

    async def test_sasl_plain_over_tls(self) -> None:
        running = start_server(self)
        server = running.service.server
        server.accounts = Accounts(server.accounts.store, server.clock, TEST_COST)
        await server.accounts.register("alice", PASSWORD)
        watcher = await running.client()
        await watcher.register("watcher")
        watcher.send("JOIN", "#w")
        home = Path(self.mktemp()).absolute()
        home.mkdir()
        commands = (
            f"/server add test 127.0.0.1/{running.tls_port} -ssl -ssl_verify=off"
            " -sasl_mechanism=plain -sasl_username=alice"
            f" -sasl_password={PASSWORD} -nicks=alice -autojoin=#w;/connect test"
        )
        process = Ended()
        assert WEECHAT is not None
        transport = cast(IReactorProcess, _reactor).spawnProcess(
            process,
            WEECHAT,
            [WEECHAT, "--dir", str(home), "--no-script", "--run-command", commands],
            env={"HOME": str(home), "TERM": "dumb"},
        )

        async def stop() -> None:
            transport.signalProcess("KILL")
            await process.ended

        self.addCleanup(stop)
        await watcher.wait_for(
            lambda m: m.command == "JOIN" and (m.source or "").startswith("alice!")
        )
        alice = server.find_user("alice")
        assert alice is not None
        self.assertEqual(alice.account, "alice")
        self.assertTrue(alice.secure)
