"""One load-generator process: many IRC clients on one asyncio loop.

The coordinator (`bench.runner`) starts several of these with
``python -m bench.loadgen``, writes a JSON *spec* as the first line of
standard input and then drives the phases with one line each:

1. set-up: connect, register and join (at most ``concurrency`` clients at
   once), then print ``READY {json}``;
2. ``GO <seconds>``: send for that long (at a fixed rate or as fast as the
   window of unacknowledged messages allows), wait until no counted line
   has arrived for ``quiet`` seconds, print ``RESULT {json}`` and exit.

Only *probe* clients parse what they receive (for latency and acks); every
other client counts the lines that contain a pattern with ``bytes.count``.
A message body carries its sender, sequence number and send time
(``time.monotonic_ns``, shared by all processes of the machine).  The
process exits by itself after ``deadline`` seconds whatever happens.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import ssl
import sys
import time
from dataclasses import dataclass
from typing import Any

#: Latencies sent back to the coordinator per process, at most.
MAX_SAMPLES = 50_000


@dataclass
class Sender:
    """A client's sending duty: targets, rate or window, progress."""

    gid: int
    targets: list[bytes]
    client: Client
    sent: int = 0
    acked: int = 0
    #: Messages allowed unacknowledged (0: this sender sends at a rate).
    window: int = 0


class Client(asyncio.Protocol):
    """One IRC connection: a line parser while setting up, a counter after."""

    def __init__(self, gen: Generator, index: int, nick: str) -> None:
        self.gen = gen
        self.index = index
        self.nick = nick
        self.transport: asyncio.Transport | None = None
        self.tail = b""
        self.setup = True
        self.probe = False
        self.count = 0
        self.last_at = 0
        self.expect_joins = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.stage = "connect"
        self.started_ns = 0
        self.reply: asyncio.Future[None] | None = None
        self.reply_pattern = b""

    # -- asyncio.Protocol --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.stage = "register"
        self.write(f"NICK {self.nick}\r\nUSER {self.nick} 0 * :bench\r\n".encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost_connections += 1
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"{self.nick}: closed"))
        if self.reply is not None and not self.reply.done():
            self.reply.set_exception(ConnectionError(f"{self.nick}: closed"))

    def data_received(self, data: bytes) -> None:
        if self.tail:
            data = self.tail + data
        end = data.rfind(b"\n") + 1
        self.tail = data[end:]
        if not end:
            return
        lines = data[:end] if end < len(data) else data
        if self.setup:
            self._setup_lines(lines)
            return
        gen = self.gen
        found = lines.count(gen.pattern)
        if gen.line_start and lines.startswith(gen.pattern[1:]):
            found += 1
        if found:
            self.count += found
            self.last_at = gen.now_ns()
            gen.last_at = self.last_at
        if self.probe:
            gen.parse(self, lines)
        elif self.reply is not None and self.reply_pattern in lines:
            self.reply.set_result(None)
            self.reply = None
        if b"PING " in lines:
            self._pong(lines)

    # -- helpers -----------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _pong(self, lines: bytes) -> None:
        for line in lines.split(b"\n"):
            if line.startswith(b"PING "):
                self.write(b"PONG " + line[5:].rstrip(b"\r") + b"\r\n")

    def _setup_lines(self, lines: bytes) -> None:
        for line in lines.split(b"\n"):
            if not line:
                continue
            if line.startswith(b"PING "):
                self._pong(line)
                continue
            if line.startswith(b"ERROR"):
                self._fail(line)
                continue
            words = line.split(b" ", 2)
            code = words[1] if line.startswith(b":") and len(words) > 1 else b""
            if self.stage == "register":
                if code in (b"376", b"422"):
                    now = self.gen.now_ns()
                    self.gen.registered_at.append(now)
                    self.gen.registration_ns.append(now - self.started_ns)
                    self._registered()
                elif code in (b"432", b"433", b"465"):
                    self._fail(line)
            elif self.stage == "join":
                if code == b"366":
                    self.expect_joins -= 1
                    if self.expect_joins <= 0:
                        self._ready()
                elif code in (b"403", b"405", b"471", b"473", b"474", b"475"):
                    self._fail(line)

    def _ready(self) -> None:
        self.stage = "ready"
        if not self.done.done():
            self.done.set_result(None)

    def _registered(self) -> None:
        channels = self.gen.joins[self.index]
        if not channels:
            self._ready()
            return
        self.stage = "join"
        self.expect_joins = len(channels)
        self.write(b"".join(b"JOIN " + name.encode() + b"\r\n" for name in channels))

    def _fail(self, line: bytes) -> None:
        if not self.done.done():
            self.done.set_exception(
                RuntimeError(f"{self.nick}: {line.decode(errors='replace')}")
            )

    def expect(self, pattern: bytes) -> asyncio.Future[None]:
        """A future resolved when a received chunk contains *pattern*."""
        self.reply_pattern = pattern
        self.reply = asyncio.get_running_loop().create_future()
        return self.reply


class Generator:
    """All the clients of this process and the figures they collect."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.host: str = spec.get("host", "127.0.0.1")
        self.port: int = spec["port"]
        #: A port per client (clients spread over cluster nodes), else `port`.
        self.ports: list[int] = spec.get("ports") or [self.port] * len(spec["nicks"])
        self.nicks: list[str] = spec["nicks"]
        self.joins: list[list[str]] = spec.get("joins") or [[] for _ in self.nicks]
        self.pattern: bytes = spec.get("pattern", " PRIVMSG ").encode()
        #: A pattern starting with a newline matches at the start of a line.
        self.line_start = self.pattern.startswith(b"\n")
        self.registration_ns: list[int] = []
        self.concurrency: int = spec.get("concurrency", 50)
        self.clients: list[Client] = []
        self.registered_at: list[int] = []
        self.latencies: list[int] = []
        self.senders: dict[int, Sender] = {}
        self.lost_connections = 0
        self.last_at = 0
        self.seen: dict[int, int] = {}
        self.gaps = 0
        self.ordered = False
        self.verb = b"PRIVMSG"
        self.pad = b""
        self.end_ns = 0
        self.uncounted: set[int] = set()
        self.ssl: ssl.SSLContext | None = None
        if spec.get("tls"):
            self.ssl = ssl.create_default_context(cafile=spec["ca"])
        self.now_ns = time.monotonic_ns

    # -- set-up ------------------------------------------------------------

    async def setup(self) -> dict[str, Any]:
        """Connect, register and join every client; return set-up figures."""
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(self.concurrency)
        failures: list[str] = []

        async def one(index: int, nick: str) -> None:
            async with gate:
                client = self.clients[index]
                client.started_ns = self.now_ns()
                try:
                    await loop.create_connection(
                        lambda: client,
                        self.host,
                        self.ports[index],
                        ssl=self.ssl,
                        server_hostname=self.host if self.ssl else None,
                    )
                    await client.done
                except (OSError, ConnectionError, RuntimeError) as error:
                    failures.append(str(error))

        self.clients = [Client(self, i, n) for i, n in enumerate(self.nicks)]
        started = self.now_ns()
        tasks = [asyncio.ensure_future(one(i, n)) for i, n in enumerate(self.nicks)]
        _, pending = await asyncio.wait(tasks, timeout=self.spec.get("setup_timeout"))
        for task in pending:
            task.cancel()
        for client in self.clients:
            client.setup = False
        return {
            "clients": len(self.nicks),
            "registered": len(self.registered_at),
            "joined": sum(
                1 for c in self.clients if c.stage == "ready" and self.joins[c.index]
            ),
            "failures": len(failures) + len(pending),
            "first_failure": failures[0] if failures else None,
            "setup_started": started,
            "setup_ended": self.now_ns(),
            "registered_at_last": max(self.registered_at, default=0),
            "registration_ns": _sample(self.registration_ns),
            "cpu_seconds": _cpu(),
        }

    # -- probes --------------------------------------------------------------

    def parse(self, client: Client, lines: bytes) -> None:
        """Read the body of every counted line: latency, gaps, acks."""
        now = self.now_ns()
        pattern = self.pattern
        latencies = self.latencies
        senders = self.senders
        seen = self.seen
        for line in lines.split(b"\n"):
            if pattern not in line:
                continue
            body = line[line.find(b" :", 1) + 2 :].split(b" ", 3)
            try:
                gid, seq, sent_ns = int(body[0]), int(body[1]), int(body[2])
            except (ValueError, IndexError):
                continue
            latencies.append(now - sent_ns)
            if self.ordered:
                key = gid * 1_000_003 + client.index
                if seq != seen.get(key, 0) + 1:
                    self.gaps += 1
                seen[key] = seq
            sender = senders.get(gid)
            if sender is not None and seq > sender.acked:
                sender.acked = seq
                if sender.window and now < self.end_ns:
                    self._refill(sender)
        if client.reply is not None and client.reply_pattern in lines:
            client.reply.set_result(None)
            client.reply = None

    # -- sending ---------------------------------------------------------------

    async def send(self, duration: float) -> None:
        """Run the spec's sending plan for *duration* seconds."""
        plan = self.spec.get("plan", {})
        kind = plan.get("kind", "none")
        for index in plan.get("probes", []):
            self.clients[index].probe = True
        self.ordered = plan.get("ordered", False)
        self.uncounted = set(plan.get("churners", []))
        for index in plan.get("slow", []):
            # A client that stops reading: its lines pile up in the server.
            self.uncounted.add(index)
            transport = self.clients[index].transport
            if transport is not None:
                transport.pause_reading()
        self.started_ns = self.now_ns()
        self.end_ns = self.started_ns + int(duration * 1e9)
        if kind == "messages":
            await self._messages(plan)
        elif kind == "churn":
            await self._churn(plan)

    def _line(self, sender: Sender, verb: bytes, pad: bytes) -> bytes:
        sender.sent += 1
        target = sender.targets[sender.sent % len(sender.targets)]
        return b"%s %s :%d %d %d %s\r\n" % (
            verb,
            target,
            sender.gid,
            sender.sent,
            self.now_ns(),
            pad,
        )

    async def _messages(self, plan: dict[str, Any]) -> None:
        verb = plan.get("verb", "PRIVMSG").encode()
        pad = b"x" * plan.get("pad", 40)
        window = plan.get("window", 0)
        rate = plan.get("rate", 0.0)
        self.verb, self.pad = verb, pad
        tasks = []
        for index, gid, targets in plan["senders"]:
            client = self.clients[index]
            sender = Sender(gid, [t.encode() for t in targets], client, window=window)
            self.senders[gid] = sender
            if window:
                # Acknowledgements (`parse`) send the rest.
                self._refill(sender)
            else:
                tasks.append(self._rate_sender(client, sender, verb, pad, rate))
        if window:
            await asyncio.sleep(max(0.0, (self.end_ns - self.now_ns()) / 1e9))
        await asyncio.gather(*tasks)

    async def _rate_sender(
        self, client: Client, sender: Sender, verb: bytes, pad: bytes, rate: float
    ) -> None:
        """Send *rate* messages per second in ticks of 5 to 50 ms, random phase."""
        tick = min(0.05, max(0.005, 1.0 / rate))
        await asyncio.sleep(random.random() * tick)
        start = self.now_ns()
        while True:
            now = self.now_ns()
            if now >= self.end_ns:
                return
            due = int((now - start) / 1e9 * rate) + 1 - sender.sent
            if due > 0:
                client.write(
                    b"".join(self._line(sender, verb, pad) for _ in range(due))
                )
            await asyncio.sleep(tick)

    def _refill(self, sender: Sender) -> None:
        """Send as many messages as *sender*'s window allows (on each ack)."""
        room = sender.window - (sender.sent - sender.acked)
        if room > 0:
            verb, pad = self.verb, self.pad
            sender.client.write(
                b"".join(self._line(sender, verb, pad) for _ in range(room))
            )

    async def _churn(self, plan: dict[str, Any]) -> None:
        """JOIN and PART *channel* in a loop, timing each round trip."""
        channel = plan["channel"].encode()
        self.churn_ops = 0

        async def churn(client: Client) -> None:
            join = b"JOIN " + channel + b"\r\n"
            part = b"PART " + channel + b"\r\n"
            while self.now_ns() < self.end_ns:
                own = b":" + client.nick.encode() + b"!"
                for line, reply in ((join, b" 366 "), (part, own)):
                    waiting = client.expect(reply)
                    sent = self.now_ns()
                    client.write(line)
                    await asyncio.wait_for(waiting, 10.0)
                    self.latencies.append(self.now_ns() - sent)
                    self.churn_ops += 1

        await asyncio.gather(*(churn(self.clients[i]) for i in plan["churners"]))

    # -- the end ---------------------------------------------------------------

    async def drain(self, quiet: float) -> None:
        """Wait until no counted line has arrived for *quiet* seconds."""
        while True:
            idle = (self.now_ns() - max(self.last_at, self.end_ns)) / 1e9
            if idle >= quiet:
                return
            await asyncio.sleep(quiet - idle + 0.01)

    def result(self, cpu_seconds: float) -> dict[str, Any]:
        return {
            "received": sum(
                c.count for c in self.clients if c.index not in self.uncounted
            ),
            "sent": sum(s.sent for s in self.senders.values()),
            "churn_ops": getattr(self, "churn_ops", 0),
            "gaps": self.gaps,
            "latencies_ns": _sample(self.latencies),
            "latency_count": len(self.latencies),
            "started_ns": self.started_ns,
            "last_ns": self.last_at,
            "cpu_seconds": cpu_seconds,
            "lost_connections": self.lost_connections,
        }


def _sample(values: list[int]) -> list[int]:
    """At most `MAX_SAMPLES` of *values*, chosen at random."""
    if len(values) > MAX_SAMPLES:
        return random.sample(values, MAX_SAMPLES)
    return values


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _main(make: type[Generator]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 28)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    spec = json.loads(await reader.readline())
    gen = make(spec)
    setup = await gen.setup()
    print("READY", json.dumps(setup), flush=True)
    command = (await reader.readline()).split()
    if not command or command[0] != b"GO":
        return
    cpu = _cpu()
    await gen.send(float(command[1]))
    await gen.drain(spec.get("quiet", 1.0))
    result = gen.result(_cpu() - cpu)
    print("RESULT", json.dumps(result), flush=True)
    for client in gen.clients:
        if client.transport is not None:
            client.transport.abort()


def main(make: type[Generator] = Generator) -> None:
    """Run one generator process (see the module docstring) with *make*'s
    clients."""
    cores = os.environ.get("BENCH_CORES")
    if cores:
        os.sched_setaffinity(0, {int(c) for c in cores.split(",")})
    deadline = float(os.environ.get("BENCH_DEADLINE", "300"))

    async def bounded() -> None:
        try:
            await asyncio.wait_for(_main(make), deadline)
        except TimeoutError:
            print("TIMEOUT", flush=True)

    try:
        import uvloop
    except ImportError:
        asyncio.run(bounded())
        return
    uvloop.run(bounded())


if __name__ == "__main__":
    main()
