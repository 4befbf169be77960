"""``--workers N``: N node processes on one machine, behind the same ports.

The process started by twistd becomes a supervisor: it makes the TLS
certificate if it is missing, then runs N workers (``python -m twisted
chat`` with the same options and ``--worker I``) and starts each again,
with growing delays, if it exits.  Each worker is a cluster node named
``<node-name>-<I>`` that opens its own listening sockets with
``SO_REUSEPORT``, so the kernel spreads new connections over the workers;
they share users, nicks and channels through the cluster's Redis, and
accounts and history through the same data directory (SQLite handles
several processes) or PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any, cast

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorProcess,
    IReactorSocket,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import ProcessProtocol, ServerFactory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from chat.config import ConfigError

log = Logger()

#: Seconds before a worker that exited is started again: first, most.
RESTART_DELAY = 1.0
RESTART_MAX = 30.0


@implementer(IStreamServerEndpoint)
class ReusePortEndpoint:
    """A TCP listener that other processes may open on the same port."""

    def __init__(
        self, reactor: IReactorSocket, interface: str, port: int, backlog: int = 50
    ) -> None:
        self.reactor = reactor
        self.interface = interface
        self.port = port
        self.backlog = backlog

    def listen(self, factory: IProtocolFactory) -> Deferred[IListeningPort]:
        family = socket.AF_INET6 if ":" in self.interface else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind((self.interface, self.port))
                sock.listen(self.backlog)
                sock.setblocking(False)
                port = self.reactor.adoptStreamPort(
                    sock.fileno(), family, cast(ServerFactory, factory)
                )
        except OSError as error:
            raise ConfigError(
                f"cannot listen on port {self.port}: {error.strerror}"
            ) from error
        return succeed(port)


class SupervisorWatch(Service):
    """In a worker: stop when the supervisor is gone (killed, even with
    SIGKILL), rather than live on outside its control."""

    def __init__(self, reactor: Any, every: float = 1.0) -> None:
        self.reactor = reactor
        self.parent_pid = os.getppid()
        self._check = LoopingCall(self._still_there)
        self._check.clock = reactor
        self.every = every

    def startService(self) -> None:
        super().startService()
        self._check.start(self.every, now=False)

    def stopService(self) -> None:
        super().stopService()
        if self._check.running:
            self._check.stop()

    def _still_there(self) -> None:
        if os.getppid() != self.parent_pid:
            log.warn("The supervisor is gone; this worker stops")
            self._check.stop()
            self.reactor.stop()


class _Worker(ProcessProtocol):
    def __init__(self, supervisor: WorkerSupervisor, index: int) -> None:
        self.supervisor = supervisor
        self.index = index
        self.exited: Deferred[None] = Deferred()

    def processEnded(self, reason: Failure) -> None:
        self.exited.callback(None)
        self.supervisor.ended(self.index, reason)


class WorkerSupervisor(Service):
    """Runs the worker processes and starts again those that exit."""

    def __init__(
        self,
        reactor: Any,
        count: int,
        arguments: Sequence[str],
    ) -> None:
        self.reactor = reactor
        self.count = count
        self.arguments = list(arguments)
        self.workers: dict[int, _Worker] = {}
        self._delays = dict.fromkeys(range(count), RESTART_DELAY)
        self._stopping = False

    def command(self, index: int) -> list[str]:
        """The command line of worker *index*: twistd in the foreground,
        logging to the supervisor's standard output."""
        return [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "--nodaemon",
            "--pidfile=",
            "--logfile=-",
            "chat",
            *self.arguments,
            "--worker",
            str(index),
        ]

    def startService(self) -> None:
        super().startService()
        for index in range(self.count):
            self._spawn(index)

    def _spawn(self, index: int) -> None:
        if self._stopping:
            return
        worker = _Worker(self, index)
        self.workers[index] = worker
        spawner: IReactorProcess = self.reactor
        spawner.spawnProcess(
            worker,
            sys.executable,
            self.command(index),
            env=None,
            childFDs={0: "w", 1: 1, 2: 2},
        )
        log.info("Started worker {index}", index=index)

    def ended(self, index: int, reason: Failure) -> None:
        self.workers.pop(index, None)
        if self._stopping:
            return
        delay = self._delays[index]
        self._delays[index] = min(delay * 2, RESTART_MAX)
        log.warn(
            "Worker {index} exited ({why}); starting it again in {delay} s",
            index=index,
            why=reason.getErrorMessage(),
            delay=delay,
        )
        clock: IReactorTime = self.reactor
        clock.callLater(delay, self._spawn, index)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self._stopping = True
        waits = []
        for worker in list(self.workers.values()):
            waits.append(worker.exited)
            if worker.transport is not None:
                worker.transport.signalProcess(signal.SIGTERM)
        return gatherResults(waits, consumeErrors=True).addBoth(lambda _: None)
