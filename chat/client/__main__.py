"""``python -m chat.client``: read the options, draw the screen, connect.

urwid runs on Twisted's reactor (`urwid.TwistedEventLoop`): key presses and
network input are handled on one thread, without polling.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable, Sequence
from typing import cast

from twisted.internet.interfaces import (
    IReactorCore,
    IReactorProcess,
    IReactorTCP,
    IReactorTime,
)
from twisted.logger import globalLogBeginner

from chat.client.config import ClientConfig, ConfigError, from_args, log_path
from chat.client.connection import Session
from chat.client.errorlog import connection_label, error_log_observer
from chat.client.networks import Networks, tcp_connector
from chat.client.notify import Notifier, spawner
from chat.client.security import Security, SecurityError, client_security


def _start_logging(config: ClientConfig) -> None:
    """Errors (by default) to client.log, each line naming the connection."""
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a", encoding="utf-8")
    logging.basicConfig(stream=handle, level=config.log_level.upper())
    globalLogBeginner.beginLoggingTo(
        [error_log_observer(handle, connection_label, config.log_level)],
        redirectStandardIO=False,
    )


def run(config: ClientConfig, security: Security) -> None:
    """Connect and run the UI until /quit."""
    from twisted.internet import reactor

    from chat.client.ui import ChatUI, start_main_loop, terminal_writer

    clock = cast(IReactorTime, reactor)
    _start_logging(config)
    connect = tcp_connector(cast(IReactorTCP, reactor))
    networks = Networks(clock, connect)
    session = networks.add(Session(config, clock, security=security))
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
        networks.quit("Terminal closed")
        stop()

    networks.on_quit = stop
    ui = ChatUI(networks, schedule=later, paste_threshold=config.paste_threshold)
    signal.signal(signal.SIGHUP, lambda *_: clock.callLater(0, terminal_gone))
    loop = start_main_loop(ui, terminal_gone)
    networks.line_listeners.append(
        Notifier(
            config.bell,
            config.notify,
            terminal_writer(loop),
            spawner(cast(IReactorProcess, reactor)),
        )
    )
    try:
        connect(session, security)
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
