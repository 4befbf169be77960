"""The systems the cluster bench measures, and where they run.

- ``single``: one process, as `bench.servers.ChatServer` runs it;
- ``2-nodes``: two ``twistd chat --cluster redis://... --node-name a|b``
  processes, each on its own ports and data directory;
- ``workers-2``: one ``twistd chat --cluster ... --workers 2`` (two worker
  nodes behind one port, spread by the kernel with ``SO_REUSEPORT``).

Each cluster system has its own Redis (`bench.redisproc`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from bench.redisproc import RedisProcess
from bench.servers import ChatServer, Server

#: The systems, in the order a scenario runs on them.
KINDS = ("single", "2-nodes", "workers-2")


class NodeServer(ChatServer):
    """This server as a cluster node (or a ``--workers`` supervisor)."""

    def __init__(
        self,
        workdir: Path,
        cores: set[int],
        redis_url: str,
        node: str,
        workers: int = 0,
    ) -> None:
        self.name = f"node-{node}"
        super().__init__(workdir, cores)
        self.redis_url = redis_url
        self.node = node
        self.workers = workers

    def command(self) -> list[str]:
        extra = ["--cluster", self.redis_url, "--node-name", self.node]
        if self.workers:
            extra += ["--workers", str(self.workers)]
        return super().command() + extra


def children(pid: int) -> list[int]:
    """The child processes of *pid* (its ``--workers`` workers)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@dataclass
class System:
    """What one run measures: node processes, maybe a Redis, their ports."""

    name: str
    servers: list[Server]
    redis: RedisProcess | None
    #: Cluster nodes expected in Redis's ``chat:nodes`` before clients connect.
    nodes: int = 0

    @property
    def ports(self) -> list[int]:
        return [s.port for s in self.servers]

    def processes(self) -> dict[str, int]:
        """Name -> pid of every process whose CPU counts (workers included)."""
        out: dict[str, int] = {}
        for server in self.servers:
            workers = children(server.pid)
            if workers:
                for index, pid in enumerate(sorted(workers)):
                    out[f"{server.name}-{index}"] = pid
            else:
                out[server.name] = server.pid
        if self.redis is not None:
            out["redis"] = self.redis.pid
        return out

    def start(self) -> None:
        if self.redis is not None:
            self.redis.start()
        for server in self.servers:
            server.start()
        deadline = time.monotonic() + 30
        while self.redis is not None and self.nodes:
            linked = int(self.redis.command("HLEN", "chat:nodes") or 0)
            if linked >= self.nodes:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name}: {linked} of {self.nodes} nodes linked"
                )
            time.sleep(0.1)
        time.sleep(0.5)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        if self.redis is not None:
            self.redis.stop()


def pinning(nodes: int) -> tuple[list[set[int]], set[int]]:
    """(cores of each node, cores of Redis and the generators).

    With more cores than nodes each node gets a core of its own and the
    rest go to Redis and the generators; otherwise (2 cores) every node
    shares the first core and Redis and the generators the others.
    """
    available = sorted(os.sched_getaffinity(0))
    if len(available) > nodes:
        return [{available[i]} for i in range(nodes)], set(available[nodes:])
    rest = set(available[1:]) or set(available)
    return [{available[0]}] * nodes, rest


def make_system(kind: str, workdir: Path) -> tuple[System, set[int]]:
    """A fresh system of *kind* (not started) and the generators' cores."""
    if kind == "single":
        (core,), rest = pinning(1)
        return System(kind, [ChatServer(workdir, core)], None), rest
    count = 2
    node_cores, rest = pinning(count)
    redis = RedisProcess(workdir / f"redis-{kind}", rest)
    if kind == "2-nodes":
        servers: list[Server] = [
            NodeServer(workdir, node_cores[i], redis.url, "ab"[i]) for i in range(2)
        ]
    elif kind == "workers-2":
        cores = set().union(*node_cores)
        servers = [NodeServer(workdir, cores, redis.url, "w", workers=count)]
    else:
        raise ValueError(f"unknown system {kind!r}")
    return System(kind, servers, redis, nodes=count), rest
