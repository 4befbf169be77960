"""``python -m bench cluster``: cluster mode beside the single process, in one run.

Each scenario (`bench.clusterscenarios`) runs on each system
(`bench.clusternodes`: one process, 2 nodes, ``--workers 2``), every one
started fresh, with its own Redis, and stopped after it.

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
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.clusternodes import KINDS, System, make_system, pinning
from bench.clusterscenarios import scenarios
from bench.procstat import cpu_seconds, rss_kb
from bench.profile import summarize as profile_summary
from bench.runner import SLACK, Worker, _profiler, percentile, read_all, summarize
from bench.scenarios import Scenario
from bench.servers import raise_nofile

#: Seconds without traffic over which Redis's background commands are counted.
IDLE = 5.0
#: Seconds after the end of sending at which CPU and Redis calls are read.
SETTLE = 0.5
#: Commands of the bench itself, left out of the per-message figures.
OWN_COMMANDS = {"info", "ping", "hlen"}


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


def prepare(sc: Scenario, system: System, gen_count: int) -> list[dict[str, Any]]:
    """The generators' specs of *sc* on *system*: each client's port, and
    the node of every sender (``gid_nodes``) for every process."""
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
    return specs


@dataclass
class Readings:
    """What the coordinator reads from /proc and Redis during a run."""

    pids: dict[str, int]
    rss_before: dict[str, int]
    rss_ready: dict[str, int] = field(default_factory=dict)
    redis_before: int = 0
    redis_ready: int = 0
    #: CPU seconds of each process over the sending, and its length.
    cpu: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0
    #: ``INFO commandstats`` calls before and after the sending.
    calls_before: dict[str, int] = field(default_factory=dict)
    calls_after: dict[str, int] = field(default_factory=dict)
    #: Calls per second of each command while nothing was sent.
    background: dict[str, float] = field(default_factory=dict)


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
    specs = prepare(sc, system, gen_count)
    pids = system.processes()
    got = Readings(pids, {name: rss_kb(pid) for name, pid in pids.items()})
    got.redis_before = redis.used_memory() if redis else 0
    deadline = sc.setup_timeout + sc.duration + SLACK
    workers: list[Worker] = []
    results: list[dict[str, Any]] = []
    try:
        for spec in specs:
            workers.append(Worker(spec, gen_cores, deadline, "bench.clustergen"))
        ready = read_all(workers, "READY", sc.setup_timeout + SLACK)
        time.sleep(1.0)  # the last registrations reach the other node
        got.rss_ready = {name: rss_kb(pid) for name, pid in pids.items()}
        got.redis_ready = redis.used_memory() if redis else 0
        if not sc.duration:
            return idle_row(sc, system, ready, got)
        if redis:
            idle = redis.commandstats()
            time.sleep(IDLE)
            got.calls_before = redis.commandstats()
            got.background = {
                k: (v - idle.get(k, 0)) / IDLE for k, v in got.calls_before.items()
            }
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        go = time.monotonic()
        for worker in workers:
            worker.send(f"GO {sc.duration}")
        spies = [
            _profiler(pid, sc.duration, profile / f"{sc.name}-{name}.txt")
            for name, pid in pids.items()
            if profile is not None and name != "redis"
        ]
        # Sending is over then; the generators disconnect after RESULT,
        # which would add QUITs to the figures.
        time.sleep(sc.duration + SETTLE)
        got.elapsed = time.monotonic() - go
        got.cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
        got.calls_after = redis.commandstats() if redis else {}
        results = read_all(workers, "RESULT", SLACK)
        for spy in spies:
            spy.wait(60)
    finally:
        for worker in workers:
            worker.stop()
    return message_row(sc, system, ready, results, got, specs[0]["gid_nodes"])


def idle_row(
    sc: Scenario, system: System, ready: list[dict[str, Any]], got: Readings
) -> dict[str, Any]:
    """The figures of a connections-only scenario: memory per user."""
    registered = sum(r["registered"] for r in ready)
    users = max(registered, 1)
    grown = {n: got.rss_ready[n] - got.rss_before[n] for n in got.pids if n != "redis"}
    row: dict[str, Any] = {
        "scenario": sc.name,
        "system": system.name,
        "clients": sum(r["clients"] for r in ready),
        "registered": registered,
        "rss_kb_per_user": {n: round(kb / users, 1) for n, kb in grown.items()},
        "rss_kb_per_user_all_nodes": round(sum(grown.values()) / users, 1),
    }
    first = min(r["setup_started"] for r in ready)
    last = max(r["registered_at_last"] for r in ready)
    if last > first:
        row["registrations_per_s"] = round(registered / ((last - first) / 1e9))
    if system.redis is not None:
        row["redis_bytes_per_user"] = round(
            (got.redis_ready - got.redis_before) / users
        )
        row["redis_used_memory"] = [got.redis_before, got.redis_ready]
    return row


def message_row(
    sc: Scenario,
    system: System,
    ready: list[dict[str, Any]],
    results: list[dict[str, Any]],
    got: Readings,
    gid_nodes: dict[int, int],
) -> dict[str, Any]:
    """The figures of a message scenario (*gid_nodes*: each sender's node)."""
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
            "setup_wall_s": 0,
            "cpu_run_s": sum(c for n, c in got.cpu.items() if n != "redis"),
        },
    )
    row: dict[str, Any] = {"scenario": sc.name, "system": system.name}
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
    ):
        row[key] = base[key]
    row.update(probe_figures(len(system.servers), results, gid_nodes))
    row.update(
        cpu_pct={n: round(100 * c / got.elapsed, 1) for n, c in got.cpu.items()},
        cpu_s_per_million_deliveries=round(
            1e6 * sum(got.cpu.values()) / max(base["received"], 1), 2
        ),
    )
    if system.redis is not None:
        row["redis_per_message"] = redis_per_message(
            got.calls_before, got.calls_after, got.background, got.elapsed, base["sent"]
        )
        row["redis_background_per_s"] = {
            k: round(v, 1)
            for k, v in got.background.items()
            if v and k not in OWN_COMMANDS
        }
    return row


def probe_figures(
    nodes: int, results: list[dict[str, Any]], gid_nodes: dict[int, int]
) -> dict[str, Any]:
    """On a system of *nodes* nodes: sent by each node's senders; what the
    probes lost, got twice, and their same-node and cross-node latencies."""
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
    expected = sum(heard[g][0] * sent_by.get(g, 0) for g in heard)
    same = sorted(x for r in results for x in r["same_ns"])
    cross = sorted(x for r in results for x in r["cross_ns"])
    return {
        "sent_by_node": by_node,
        "probe_deliveries": expected,
        "probe_lost": expected - sum(heard[g][1] for g in heard),
        "probe_duplicated": sum(r["duplicates"] for r in results),
        "probe_unexpected": sum(r["unexpected"] for r in results),
        "same_node_p50_ms": percentile(same, 0.5),
        "same_node_p99_ms": percentile(same, 0.99),
        "same_node_samples": len(same),
        "cross_node_p50_ms": percentile(cross, 0.5),
        "cross_node_p99_ms": percentile(cross, 0.99),
        "cross_node_samples": len(cross),
    }


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
        columns = IDLE_COLUMNS if "rss_kb_per_user" in row else MESSAGE_COLUMNS
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
    if systems - set(KINDS):
        parser.error(f"--systems: not one of {', '.join(KINDS)}")
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
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
