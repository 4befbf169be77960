"""``python -m bench cluster``: cluster mode beside the single process, in one run.

Systems under test, each started fresh (with its own Redis) for every
scenario:

- ``single``: one process, as `bench.servers.ChatServer` runs it;
- ``2-nodes``: two ``twistd chat --cluster redis://... --node-name a|b``
  processes on their own ports, clients alternating between them;
- ``workers-2``: one ``twistd chat --cluster ... --workers 2`` (two worker
  nodes behind one port, spread by the kernel with ``SO_REUSEPORT``).

Scenarios: a channel of 500 at 50,000 deliveries/s, PRIVMSG probe pairs on
one node and across nodes (latency), the channel of 500 as fast as
possible, and 10,000 idle users (Redis memory per user).  Every row has the
CPU of each node and of Redis, the Redis commands per message sent (by
command name, from ``INFO commandstats``) and, from the probes, latency
p50/p99 split into same-node and cross-node deliveries and the messages each
probe lost or received twice (by sender and sequence number).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.procstat import cpu_seconds, rss_kb
from bench.profile import summarize as profile_summary
from bench.redisproc import RedisProcess
from bench.runner import SLACK, Worker, _profiler, percentile, read_all, summarize
from bench.scenarios import Scenario, _split, busy_channel, connect_only
from bench.servers import ChatServer, Server, raise_nofile

#: Seconds without traffic over which Redis's background commands are counted.
IDLE = 5.0
#: Seconds after the end of sending at which CPU and Redis calls are read.
SETTLE = 0.5
#: Commands of the bench itself, left out of the per-message figures.
OWN_COMMANDS = {"info", "ping", "hlen"}


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


def pairs(sc: Scenario, workers: int) -> list[dict[str, Any]]:
    """PRIVMSG probe pairs: in each group of four pairs, two have both ends
    on one node (a-a, b-b) and two have them on different nodes (a-b, b-a)."""
    p = sc.params
    count = sc.clients // 2
    specs: list[dict[str, Any]] = []
    for part in _split([str(j) for j in range(count)], workers):
        nicks: list[str] = []
        nodes: list[int] = []
        senders: list[list[Any]] = []
        probes: list[int] = []
        expect: dict[str, list[int]] = {}
        for j, _ in part:
            node = j % 2
            partner = node if (j // 2) % 2 == 0 else 1 - node
            index = len(nicks)
            nicks += [f"ps{j}", f"pr{j}"]
            nodes += [node, partner]
            senders.append([index, j, [f"pr{j}"]])
            probes.append(index + 1)
            expect[str(index + 1)] = [j]
        specs.append(
            {
                "nicks": nicks,
                "nodes": nodes,
                "plan": {
                    "kind": "messages",
                    "senders": senders,
                    "rate": p["rate"],
                    "probes": probes,
                    "expect": expect,
                    "ordered": True,
                },
            }
        )
    return specs


def alternating(build: Callable[[Scenario, int], list[dict[str, Any]]]) -> Any:
    """*build*, with each process's clients alternating between two nodes."""

    def spread(sc: Scenario, workers: int) -> list[dict[str, Any]]:
        specs = build(sc, workers)
        for spec in specs:
            spec["nodes"] = [i % 2 for i in range(len(spec["nicks"]))]
        return specs

    return spread


def scenarios(duration: float, users: int) -> list[tuple[Scenario, list[str]]]:
    """The scenarios and the systems each runs on."""
    cluster = ["single", "2-nodes"]
    return [
        (
            Scenario(
                "busy-500-rate",
                "1",
                "one channel of 500 over 2 nodes, 50k deliveries/s",
                alternating(busy_channel),
                500,
                duration,
                params={"senders": 10, "probes": 40, "deliveries": 50_000},
                fanout=499,
            ),
            cluster,
        ),
        (
            Scenario(
                "pairs",
                "2",
                "40 PRIVMSG pairs (20 within a node, 20 across), 20 msg/s each",
                pairs,
                80,
                duration,
                params={"rate": 20.0},
                fanout=1,
            ),
            cluster,
        ),
        (
            Scenario(
                "busy-500-fast",
                "3",
                "one channel of 500, as fast as possible, 100 in flight",
                alternating(busy_channel),
                500,
                duration,
                params={"senders": 10, "probes": 10, "in_flight": 100},
                fanout=499,
            ),
            ["single", "2-nodes", "workers-2"],
        ),
        (
            Scenario(
                f"idle-{users}",
                "5",
                f"{users} idle users register (plaintext), memory per user",
                alternating(connect_only),
                users,
                0.0,
                setup_timeout=120.0,
                concurrency=100,
            ),
            cluster,
        ),
    ]


def redis_per_message(
    before: dict[str, int],
    after: dict[str, int],
    background: dict[str, float],
    seconds: float,
    messages: int,
) -> dict[str, float]:
    """Redis calls per message sent, by command, less the background."""
    out = {}
    for name in sorted(set(after) - OWN_COMMANDS):
        calls = after[name] - before.get(name, 0) - background.get(name, 0.0) * seconds
        calls = max(calls, 0.0)  # the background is an estimate (lease ticks)
        if messages and abs(calls) / messages >= 0.001:
            out[name] = round(calls / messages, 3)
    out["total"] = round(sum(out.values()), 3)
    return out


def measure(
    sc: Scenario,
    system: System,
    gen_count: int,
    gen_cores: set[int],
    profile: Path | None = None,
) -> dict[str, Any]:
    """Run *sc* against the started *system*; one row of figures.  With
    *profile*, py-spy samples each node while the clients send and writes
    its collapsed stacks to that directory."""
    redis = system.redis
    nodes = len(system.servers)
    ports = system.ports
    specs = sc.specs(gen_count)
    gid_nodes: dict[int, int] = {}
    for spec in specs:
        spec["nodes"] = [n % nodes for n in spec.get("nodes", [0] * len(spec["nicks"]))]
        spec["ports"] = [ports[n] for n in spec["nodes"]]
        spec.update(port=ports[0], ca=str(system.servers[0].ca))
        if sc.duration:
            spec["concurrency"] = max(1, 100 // gen_count)
        for local, gid, _targets in spec.get("plan", {}).get("senders", []):
            gid_nodes[gid] = spec["nodes"][local]
    for spec in specs:
        spec["gid_nodes"] = gid_nodes
    pids = system.processes()
    memory0 = redis.used_memory() if redis else 0
    rss0 = {name: rss_kb(pid) for name, pid in pids.items()}
    cpu_setup0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    deadline = sc.setup_timeout + sc.duration + SLACK
    workers: list[Worker] = []
    started = time.monotonic()
    try:
        for spec in specs:
            workers.append(Worker(spec, gen_cores, deadline, "bench.clustergen"))
        ready = read_all(workers, "READY", sc.setup_timeout + SLACK)
        setup_wall = time.monotonic() - started
        cpu_setup = {n: cpu_seconds(p) - cpu_setup0[n] for n, p in pids.items()}
        time.sleep(1.0)  # the last registrations reach the other node
        memory1 = redis.used_memory() if redis else 0
        rss1 = {name: rss_kb(pid) for name, pid in pids.items()}
        stats0 = redis.commandstats() if redis else {}
        if sc.duration and redis:
            time.sleep(IDLE)
        stats1 = redis.commandstats() if redis else {}
        background = {k: (v - stats0.get(k, 0)) / IDLE for k, v in stats1.items()}
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        go = time.monotonic()
        results: list[dict[str, Any]] = []
        spies: list[subprocess.Popen[bytes]] = []
        if sc.duration:
            for worker in workers:
                worker.send(f"GO {sc.duration}")
            if profile is not None:
                spies = [
                    _profiler(pid, sc.duration, profile / f"{sc.name}-{name}.txt")
                    for name, pid in pids.items()
                    if name != "redis"
                ]
            # Sending is over then; the generators disconnect after RESULT,
            # which would add QUITs to the figures.
            time.sleep(sc.duration + SETTLE)
        elapsed = time.monotonic() - go
        cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
        stats2 = redis.commandstats() if redis else {}
        if sc.duration:
            results = read_all(workers, "RESULT", SLACK)
        for spy in spies:
            spy.wait(60)
    finally:
        for worker in workers:
            worker.stop()
    registered = sum(r["registered"] for r in ready)
    row: dict[str, Any] = {"scenario": sc.name, "system": system.name}
    if not sc.duration:
        row.update(
            clients=sum(r["clients"] for r in ready),
            registered=registered,
            setup_s=round(setup_wall, 2),
            cpu_setup_s={n: round(c, 2) for n, c in cpu_setup.items()},
            rss_kb_per_user={
                n: round((rss1[n] - rss0[n]) / max(registered, 1), 1)
                for n in pids
                if n != "redis"
            },
        )
        nodes_kb = [rss1[n] - rss0[n] for n in pids if n != "redis"]
        row["rss_kb_per_user_all_nodes"] = round(sum(nodes_kb) / max(registered, 1), 1)
        first = min(r["setup_started"] for r in ready)
        last = max(r["registered_at_last"] for r in ready)
        if last > first:
            row["registrations_per_s"] = round(registered / ((last - first) / 1e9))
        if redis:
            row["redis_bytes_per_user"] = round(
                (memory1 - memory0) / max(registered, 1)
            )
            row["redis_used_memory"] = [memory0, memory1]
        return row
    base = summarize(
        sc,
        system.servers[0],
        ready,
        results,
        {
            "rss_start_kb": 0,
            "rss_ready_kb": 0,
            "rss_end_kb": 0,
            "cpu_setup_s": 0,
            "setup_wall_s": setup_wall,
            "cpu_run_s": sum(c for n, c in cpu.items() if n != "redis"),
        },
    )
    sent_by: dict[str, int] = {}
    heard: dict[str, list[int]] = {}
    for r in results:
        sent_by.update(r["sent_by"])
        for gid, (probes, distinct) in r["heard"].items():
            entry = heard.setdefault(gid, [0, 0])
            entry[0] += probes
            entry[1] += distinct
    by_node: dict[str, int] = {}
    for gid, count in sent_by.items():
        node = "ab"[gid_nodes[int(gid)]] if nodes > 1 else "all"
        by_node[node] = by_node.get(node, 0) + count
    probe_expected = sum(heard[g][0] * sent_by.get(g, 0) for g in heard)
    probe_distinct = sum(heard[g][1] for g in heard)
    same = sorted(x for r in results for x in r["same_ns"])
    cross = sorted(x for r in results for x in r["cross_ns"])
    row.update(
        {
            key: base[key]
            for key in (
                "clients",
                "registered",
                "sent",
                "received",
                "expected",
                "lost",
                "order_gaps",
                "deliveries_per_s",
                "latency_p50_ms",
                "latency_p99_ms",
                "generator_cpu_pct",
            )
        }
    )
    row.update(
        sent_by_node=by_node,
        probe_deliveries=probe_expected,
        probe_lost=probe_expected - probe_distinct,
        probe_duplicated=sum(r["duplicates"] for r in results),
        probe_unexpected=sum(r["unexpected"] for r in results),
        same_node_p50_ms=percentile(same, 0.5),
        same_node_p99_ms=percentile(same, 0.99),
        same_node_samples=len(same),
        cross_node_p50_ms=percentile(cross, 0.5),
        cross_node_p99_ms=percentile(cross, 0.99),
        cross_node_samples=len(cross),
        cpu_pct={n: round(100 * c / elapsed, 1) for n, c in cpu.items()},
        cpu_s_per_million_deliveries=round(
            1e6 * sum(cpu.values()) / max(base["received"], 1), 2
        ),
    )
    if redis:
        row["redis_per_message"] = redis_per_message(
            stats1, stats2, background, elapsed, base["sent"]
        )
        row["redis_background_per_s"] = {
            k: round(v, 1) for k, v in background.items() if v and k not in OWN_COMMANDS
        }
    return row


def run_one(
    sc: Scenario, kind: str, workdir: Path, gen_count: int, profile: Path | None
) -> dict[str, Any]:
    """Start a fresh *kind* system, run *sc*, stop it."""
    system, gen_cores = make_system(kind, workdir)
    try:
        system.start()
        return measure(sc, system, gen_count, gen_cores, profile)
    finally:
        system.stop()


def _pair(row: dict[str, Any], key: str) -> str:
    p50, p99 = row.get(key + "_p50_ms"), row.get(key + "_p99_ms")
    return "-" if p50 is None else f"{p50} / {p99}"


def _dict(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in values.items()) or "-"


#: The columns of each kind of row: (title, cell of a row).
MESSAGE_COLUMNS: list[tuple[str, Callable[[dict[str, Any]], object]]] = [
    ("system", lambda r: r["system"]),
    ("deliveries/s", lambda r: f"{r['deliveries_per_s']:,}"),
    ("p50 / p99 ms", lambda r: _pair(r, "latency")),
    ("same-node p50 / p99", lambda r: _pair(r, "same_node")),
    ("cross-node p50 / p99", lambda r: _pair(r, "cross_node")),
    ("sent (by node)", lambda r: _dict(r.get("sent_by_node", {}))),
    ("lost (all)", lambda r: r["lost"]),
    ("probes: lost / dup", lambda r: f"{r['probe_lost']} / {r['probe_duplicated']}"),
    ("CPU % (of one core)", lambda r: _dict(r["cpu_pct"])),
    ("CPU s / M deliveries", lambda r: r["cpu_s_per_million_deliveries"]),
    ("Redis calls / message", lambda r: _dict(r.get("redis_per_message", {}))),
]
IDLE_COLUMNS: list[tuple[str, Callable[[dict[str, Any]], object]]] = [
    ("system", lambda r: r["system"]),
    ("registered", lambda r: r["registered"]),
    ("reg/s", lambda r: r.get("registrations_per_s")),
    ("RSS KB / user, each process", lambda r: _dict(r["rss_kb_per_user"])),
    ("RSS KB / user, all nodes", lambda r: r["rss_kb_per_user_all_nodes"]),
    ("Redis bytes / user", lambda r: r.get("redis_bytes_per_user", "-")),
]


def markdown(rows: list[dict[str, Any]]) -> str:
    """*rows* as Markdown tables, one per scenario."""
    out: list[str] = []
    scenario = None
    for row in rows:
        columns = IDLE_COLUMNS if "setup_s" in row else MESSAGE_COLUMNS
        if row["scenario"] != scenario:
            scenario = row["scenario"]
            out += ["", f"### `{scenario}`: {row.get('title', '')}", ""]
            out.append("| " + " | ".join(t for t, _ in columns) + " |")
            out.append("|" + "---|" * len(columns))
        if "error" in row:
            out.append(f"| {row['system']} | failed: {row['error']} |")
            continue
        out.append("| " + " | ".join(str(cell(row)) for _, cell in columns) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench cluster")
    parser.add_argument("--duration", type=float, default=10.0, help="s of sending")
    parser.add_argument("--users", type=int, default=10_000, help="idle users")
    parser.add_argument("--workers", type=int, default=2, help="generators")
    parser.add_argument("--scenarios", default="", help="names or numbers (all)")
    parser.add_argument("--systems", default="", help="single,2-nodes,workers-2")
    parser.add_argument("--jsonl", type=Path, help="append JSON lines here")
    parser.add_argument("--report", type=Path, help="only print FILE's tables")
    parser.add_argument(
        "--profile", type=Path, help="py-spy each node while sending: stacks in DIR"
    )
    args = parser.parse_args(argv)
    if args.report:
        lines = args.report.read_text().splitlines()
        print(markdown([json.loads(line) for line in lines if line.strip()]))
        return 0
    raise_nofile()
    wanted = {w for w in args.scenarios.split(",") if w}
    systems = {s for s in args.systems.split(",") if s}
    node_cores, rest = pinning(2)
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; "
        f"{os.cpu_count()} CPUs; nodes on cores {[sorted(c) for c in node_cores]}, "
        f"Redis and generators on {sorted(rest)}; load average "
        f"{os.getloadavg()[0]:.2f}",
        file=sys.stderr,
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        for sc, kinds in scenarios(args.duration, args.users):
            if wanted and sc.name not in wanted and sc.letter not in wanted:
                continue
            if not sc.duration:
                sc = replace(sc, setup_timeout=max(sc.setup_timeout, args.users / 50))
            for kind in kinds:
                if systems and kind not in systems:
                    continue
                begun = time.monotonic()
                try:
                    if args.profile is not None:
                        args.profile.mkdir(parents=True, exist_ok=True)
                    row = run_one(
                        sc,
                        kind,
                        Path(tmp) / f"{sc.name}-{kind}",
                        args.workers,
                        args.profile,
                    )
                except (RuntimeError, TimeoutError) as error:
                    row = {"scenario": sc.name, "system": kind, "error": str(error)}
                row["title"] = sc.title
                row["wall_s"] = round(time.monotonic() - begun, 1)
                print(json.dumps(row), flush=True)
                rows.append(row)
                if args.jsonl:
                    with args.jsonl.open("a") as f:
                        f.write(json.dumps(row) + "\n")
    print(markdown(rows))
    if args.profile is not None:
        for stacks in sorted(args.profile.glob("*.txt")):
            print(f"\n## {stacks.name}", profile_summary(stacks, 15), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
