"""client.log: errors only by default, each naming its connection."""

from __future__ import annotations

import io
import os
from typing import cast

from twisted.internet import reactor as _reactor
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IReactorTCP, IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from chat.client.config import ClientConfig
from chat.client.connection import Session
from chat.client.errorlog import error_log_observer
from chat.message import Message
from tests.client_support import Wire, free_port, until

reactor = cast(IReactorTime, _reactor)


class ErrorLogTests(TestCase):
    def capture(self, level: str = "error") -> io.StringIO:
        handle = io.StringIO()
        observer = error_log_observer(handle, level=level)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        return handle

    async def test_retries_and_factory_noise_stay_out(self) -> None:
        errors = self.capture()
        everything = self.capture("debug")
        port = free_port()
        config = ClientConfig(
            host="127.0.0.1",
            port=port,
            nick="alice",
            plain=True,
            reconnect_initial=0.01,
        )
        session = Session(config, reactor, jitter=lambda: 0.0)
        session.start(HostnameEndpoint(cast(IReactorTCP, reactor), "127.0.0.1", port))
        self.addCleanup(session.quit)
        failures = [0]

        def refused() -> bool:
            failures[0] += session.state.status.state.startswith("reconnecting")
            return failures[0] >= 3

        await until(session, refused)
        # Leave the retry machinery's call stack before the cleanup stops it.
        await deferLater(reactor, 0, lambda: None)
        self.assertEqual(errors.getvalue(), "")
        debug = everything.getvalue()
        self.assertIn(
            f"[127.0.0.1:{port} alice pid {os.getpid()}] "
            f"Reconnecting to 127.0.0.1:{port} in",
            debug,
        )
        self.assertNotIn("Starting factory", debug)

    def test_an_error_names_the_connection(self) -> None:
        handle = self.capture()
        wire = Wire()
        wire.register()

        def broken(message: Message, origin: object = None) -> None:
            raise RuntimeError("a bug in a handler")

        wire.session.events.handle = broken  # type: ignore[method-assign]
        wire.feed(":bob!b@h PRIVMSG alice :hello")
        text = handle.getvalue()
        first = text.splitlines()[0]
        self.assertRegex(
            first,
            r"^\d{4}-\d\d-\d\dT[\d:]+\S* "
            r"\[irc.test:6697 alice pid \d+\] Could not handle",
        )
        self.assertIn("RuntimeError: a bug in a handler", text)
        self.assertIn("Could not handle a PRIVMSG message", wire.lines()[-1])
        self.flushLoggedErrors(RuntimeError)
