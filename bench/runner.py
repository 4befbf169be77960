"""Run scenarios against servers and add up what the generators report."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any, cast

from bench.procstat import cpu_seconds, rss_kb
from bench.scenarios import Scenario
from bench.servers import ROOT, Server, raise_nofile

#: Seconds a generator may take beyond set-up and sending before it is killed.
SLACK = 60.0


def cores() -> tuple[set[int], set[int]]:
    """(server cores, generator cores): different ones when there are two."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return set(available), set(available)
    return {available[0]}, set(available[1:])


class Worker:
    """One generator process and its control pipes."""

    def __init__(
        self,
        spec: dict[str, Any],
        gen_cores: set[int],
        deadline: float,
        module: str = "bench.loadgen",
    ):
        env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            BENCH_CORES=",".join(map(str, sorted(gen_cores))),
            BENCH_DEADLINE=str(deadline),
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            preexec_fn=raise_nofile,
        )
        self.send(json.dumps(spec))

    def send(self, line: str) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(line.encode() + b"\n")
        stdin.flush()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def read_all(workers: list[Worker], word: str, timeout: float) -> list[dict[str, Any]]:
    """The ``WORD {json}`` line of every worker, in order; raise on timeout."""
    pending: dict[object, int] = {}
    with selectors.DefaultSelector() as selector:
        for index, worker in enumerate(workers):
            assert worker.process.stdout is not None
            pending[worker.process.stdout] = index
            selector.register(worker.process.stdout, selectors.EVENT_READ)
        found: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while len(found) < len(workers):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"generators did not say {word} in {timeout} s")
            for key, _ in selector.select(left):
                stream = cast(IO[bytes], key.fileobj)
                line = stream.readline()
                index = pending[stream]
                if not line:
                    raise RuntimeError(f"generator {index} exited before {word}")
                head, _, body = line.decode().partition(" ")
                if head == word:
                    found[index] = json.loads(body)
                    selector.unregister(stream)
                elif head == "TIMEOUT":
                    raise TimeoutError(f"generator {index} hit its deadline")
    return [found[i] for i in range(len(workers))]


def percentile(values: list[int], fraction: float) -> float | None:
    """The *fraction* percentile of sorted *values*, in milliseconds."""
    if not values:
        return None
    return round(values[min(len(values) - 1, int(fraction * len(values)))] / 1e6, 3)


def run(
    scenario: Scenario,
    server: Server,
    workers: int,
    gen_cores: set[int],
    profile: Path | None = None,
) -> dict[str, Any]:
    """Run *scenario* against *server* (started and stopped here).

    With *profile*, py-spy samples the server while the clients send and
    writes its collapsed stacks there.
    """
    server.start()
    try:
        return _measure(scenario, server, workers, gen_cores, profile)
    finally:
        server.stop()


def _profiler(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    py_spy = ROOT / ".venv" / "bin" / "py-spy"
    return subprocess.Popen(
        [
            str(py_spy),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, int(seconds))),
            "--format",
            "raw",
            "--rate",
            "250",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _measure(
    scenario: Scenario,
    server: Server,
    count: int,
    gen_cores: set[int],
    profile: Path | None,
) -> dict[str, Any]:
    pid = server.pid
    time.sleep(0.5)
    rss_start = rss_kb(pid)
    deadline = scenario.setup_timeout + scenario.duration + SLACK
    specs = scenario.specs(count)
    port = server.tls_port if scenario.tls else server.port
    workers = []
    cpu_setup = cpu_seconds(pid)
    setup_started = time.monotonic()
    spy = None
    if profile is not None and not scenario.duration:
        # Connections only: profile the set-up, stopped (SIGINT) when done.
        spy = _profiler(pid, scenario.setup_timeout, profile)
    try:
        for spec in specs:
            spec.update(port=port, ca=str(server.ca))
            if scenario.duration:
                # Set-up is not what these scenarios measure: connect at the
                # pace that suits each server.
                spec["concurrency"] = max(1, server.setup_concurrency // count)
            workers.append(Worker(spec, gen_cores, deadline))
        ready = read_all(workers, "READY", scenario.setup_timeout + SLACK)
        setup_wall = time.monotonic() - setup_started
        cpu_setup = cpu_seconds(pid) - cpu_setup
        rss_ready = rss_kb(pid)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
            spy = None
        cpu_go = cpu_seconds(pid)
        if profile is not None and scenario.duration:
            spy = _profiler(pid, scenario.duration, profile)
        for worker in workers:
            worker.send(f"GO {scenario.duration}")
        results = read_all(workers, "RESULT", scenario.duration + SLACK)
        cpu_used = cpu_seconds(pid) - cpu_go
        rss_end = rss_kb(pid)
        if spy is not None:
            spy.wait(60)
    finally:
        for worker in workers:
            worker.stop()
    return summarize(
        scenario,
        server,
        ready,
        results,
        {
            "rss_start_kb": rss_start,
            "rss_ready_kb": rss_ready,
            "rss_end_kb": rss_end,
            "cpu_setup_s": round(cpu_setup, 3),
            "setup_wall_s": round(setup_wall, 3),
            "cpu_run_s": cpu_used,
        },
    )


def summarize(
    scenario: Scenario,
    server: Server,
    ready: list[dict[str, Any]],
    results: list[dict[str, Any]],
    measured: dict[str, Any],
) -> dict[str, Any]:
    """One row of figures for *scenario* on *server*."""
    clients = sum(r["clients"] for r in ready)
    registered = sum(r["registered"] for r in ready)
    first = min(r["setup_started"] for r in ready)
    last_registered = max(r["registered_at_last"] for r in ready)
    registration = sorted(x for r in ready for x in r["registration_ns"])
    sent = sum(r["sent"] for r in results)
    ops = sum(r["churn_ops"] for r in results)
    received = sum(r["received"] for r in results)
    # A member that could not join receives nothing: count those who did.
    missing = clients - sum(r["joined"] for r in ready) if scenario.fanout else 0
    if scenario.name.startswith("busy"):
        fanout = scenario.fanout - missing
    else:
        fanout = scenario.fanout
    churn_fanout = scenario.churn_fanout
    if churn_fanout:
        churn_fanout = sum(r["joined"] for r in ready)
    expected = sent * fanout + ops * churn_fanout
    started = min(r["started_ns"] for r in results)
    last = max([r["last_ns"] for r in results] + [started])
    window = max((last - started) / 1e9, scenario.duration, 1e-9)
    latencies = sorted(x for r in results for x in r["latencies_ns"])
    gen_cpu = sum(r["cpu_seconds"] for r in results)
    rss_ready = measured["rss_ready_kb"]
    server_cpu = measured["cpu_run_s"]
    if not scenario.duration:
        # Connections only: the figures are those of the set-up.
        window = measured["setup_wall_s"]
        server_cpu = measured["cpu_setup_s"]
        gen_cpu = sum(r["cpu_seconds"] for r in ready)
    row: dict[str, Any] = {
        "scenario": scenario.name,
        "letter": scenario.letter,
        "server": server.name,
        "tls": scenario.tls,
        "clients": clients,
        "registered": registered,
        "duration_s": scenario.duration,
        "sent": sent,
        "churn_ops": ops,
        "received": received,
        "expected": expected,
        "lost": expected - received,
        "order_gaps": sum(r["gaps"] for r in results),
        "deliveries_per_s": round(received / window),
        "latency_p50_ms": percentile(latencies, 0.50),
        "latency_p99_ms": percentile(latencies, 0.99),
        "latency_samples": sum(r["latency_count"] for r in results),
        "server_cpu_pct": round(100 * server_cpu / window, 1),
        "generator_cpu_pct": round(100 * gen_cpu / window, 1),
        "server_rss_kb": measured["rss_end_kb"],
        "kb_per_connection": round(
            (rss_ready - measured["rss_start_kb"]) / max(registered, 1), 1
        ),
        "registration_s": round((last_registered - first) / 1e9, 3)
        if registered
        else None,
        "registrations_per_s": round(registered / ((last_registered - first) / 1e9))
        if registered and last_registered > first
        else None,
        "registration_p50_ms": percentile(registration, 0.50),
        "registration_p99_ms": percentile(registration, 0.99),
        "server_cpu_setup_s": measured["cpu_setup_s"],
        "setup_failures": sum(r["failures"] for r in ready),
        "first_failure": next(
            (r["first_failure"] for r in ready if r["first_failure"]), None
        ),
        "lost_connections": sum(r["lost_connections"] for r in results),
        "generators": len(results),
    }
    return row


COLUMNS = [
    ("server", "server", "{}"),
    ("deliv/s", "deliveries_per_s", "{:,}"),
    ("p50 ms", "latency_p50_ms", "{}"),
    ("p99 ms", "latency_p99_ms", "{}"),
    ("lost", "lost", "{}"),
    ("srv CPU%", "server_cpu_pct", "{}"),
    ("gen CPU%", "generator_cpu_pct", "{}"),
    ("RSS MB", "server_rss_kb", "{:.0f}"),
    ("KB/conn", "kb_per_connection", "{}"),
    ("reg", "registered", "{}"),
    ("reg/s", "registrations_per_s", "{}"),
    ("reg s", "registration_s", "{}"),
]


def table(rows: list[dict[str, Any]]) -> str:
    """A readable table of *rows*, grouped by scenario."""
    lines: list[str] = []
    scenario = None
    widths = [max(len(title), 9) for title, _, _ in COLUMNS]
    for row in rows:
        if row["scenario"] != scenario:
            scenario = row["scenario"]
            lines.append("")
            lines.append(f"({row['letter']}) {scenario}: {row.get('title', '')}")
            lines.append(
                "  ".join(
                    t.rjust(w) for (t, _, _), w in zip(COLUMNS, widths, strict=True)
                )
            )
        cells = []
        for (_, key, fmt), width in zip(COLUMNS, widths, strict=True):
            value = row.get(key)
            if key == "server_rss_kb" and value is not None:
                value = value / 1024
            cells.append(("-" if value is None else fmt.format(value)).rjust(width))
        lines.append("  ".join(cells))
    return "\n".join(lines)


MARKDOWN_COLUMNS = [
    ("server", "server", "{}"),
    ("deliveries/s", "deliveries_per_s", "{:,}"),
    ("p50 ms", "latency_p50_ms", "{}"),
    ("p99 ms", "latency_p99_ms", "{}"),
    ("lost", "lost", "{}"),
    ("server CPU %", "server_cpu_pct", "{}"),
    ("generator CPU %", "generator_cpu_pct", "{}"),
    ("server RSS MB", "server_rss_kb", "{:.0f}"),
    ("KB/conn", "kb_per_connection", "{}"),
    ("registered", "registered", "{}"),
    ("reg/s", "registrations_per_s", "{}"),
    ("reg p50/p99 ms", "registration", "{}"),
]


def markdown(rows: list[dict[str, Any]]) -> str:
    """*rows* as Markdown tables, one per scenario."""
    out: list[str] = []
    scenario = None
    for row in rows:
        if row["scenario"] != scenario:
            scenario = row["scenario"]
            out += [
                "",
                f"### ({row['letter']}) `{scenario}`: {row.get('title', '')}",
                "",
            ]
            out.append("| " + " | ".join(t for t, _, _ in MARKDOWN_COLUMNS) + " |")
            out.append("|" + "---|" * len(MARKDOWN_COLUMNS))
        if "error" in row:
            out.append(f"| {row['server']} | failed: {row['error']} |")
            continue
        cells = []
        for _, key, fmt in MARKDOWN_COLUMNS:
            if key == "registration":
                value: Any = (
                    f"{row['registration_p50_ms']}/{row['registration_p99_ms']}"
                )
            else:
                value = row.get(key)
                if key == "server_rss_kb" and value is not None:
                    value = value / 1024
            cells.append("-" if value is None else fmt.format(value))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def write_jsonl(path: Path, row: dict[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")
