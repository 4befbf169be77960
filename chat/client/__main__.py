"""``python -m chat.client``: read the options, draw the screen, connect.

urwid runs on Twisted's reactor (`urwid.TwistedEventLoop`): key presses and
network input are handled on one thread, without polling.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import cast

from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import (
    IReactorCore,
    IReactorProcess,
    IReactorTCP,
    IReactorTime,
)
from twisted.logger import globalLogBeginner

from chat.client.config import ClientConfig, ConfigError, from_args, log_path
from chat.client.connection import Session
from chat.client.errorlog import error_log_observer
from chat.client.notify import Notifier, spawner
from chat.client.security import Security, SecurityError, client_security


def _start_logging(config: ClientConfig, session: Session) -> None:
    """Errors (by default) to client.log, each line naming the connection."""
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a", encoding="utf-8")
    logging.basicConfig(stream=handle, level=config.log_level.upper())

    def label() -> str:
        return f"{config.host}:{config.port} {session.state.nick} pid {os.getpid()}"

    globalLogBeginner.beginLoggingTo(
        [error_log_observer(handle, label, config.log_level)],
        redirectStandardIO=False,
    )


def run(config: ClientConfig, security: Security) -> None:
    """Connect and run the UI until /quit."""
    from twisted.internet import reactor

    from chat.client.ui import ChatUI, start_main_loop, terminal_writer

    clock = cast(IReactorTime, reactor)
    session = Session(config, clock, security=security)
    _start_logging(config, session)
    if security.warning:
        session.state.error(security.warning, now=clock.seconds())
    if security.note:
        session.state.info(security.note, now=clock.seconds())

    def later(call: Callable[[], None]) -> None:
        clock.callLater(0, call)

    core = cast(IReactorCore, reactor)
    stopped: list[bool] = []

    def stop() -> None:
        if not stopped:
            stopped.append(True)
            core.stop()

    def terminal_gone() -> None:
        """The terminal closed (SIGHUP or end of input): leave at once."""
        session.quit("Terminal closed")
        stop()

    session.on_quit = stop
    ui = ChatUI(session, schedule=later, paste_threshold=config.paste_threshold)
    endpoint = HostnameEndpoint(
        cast(IReactorTCP, reactor), config.host, config.port, 15
    )
    if security.options is not None:
        endpoint = wrapClientTLS(security.options, endpoint)  # type: ignore[assignment, arg-type]
    signal.signal(signal.SIGHUP, lambda *_: clock.callLater(0, terminal_gone))
    loop = start_main_loop(ui, terminal_gone)
    session.state.line_listeners.append(
        Notifier(
            config.bell,
            config.notify,
            terminal_writer(loop),
            spawner(cast(IReactorProcess, reactor)),
        )
    )
    try:
        session.start(endpoint)
        core.run()
    finally:
        loop.stop()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = from_args(argv)
        security = client_security(config)
    except (ConfigError, SecurityError) as error:
        print(f"chat-client: {error}", file=sys.stderr)
        return 2
    run(config, security)
    return 0


if __name__ == "__main__":
    sys.exit(main())
