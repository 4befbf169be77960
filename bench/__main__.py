"""``python -m bench run [--quick]``: run the scenarios, print the figures.

Each scenario runs against each server in turn (a fresh server process each
time, pinned to one core, the generators to the others); every run prints
one JSON line on standard output as it ends and the table at the end.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from bench.profile import summarize
from bench.runner import cores, markdown, run, table, write_jsonl
from bench.scenarios import scenarios
from bench.servers import SERVERS, Ergo, installed, raise_nofile


def machine() -> str:
    """nproc and the CPU model."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{os.cpu_count()} CPUs, {model}, Linux {platform.release()}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["cluster"]:
        from bench.cluster import main as cluster

        return cluster(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="run scenarios against servers")
    run_parser.add_argument("--quick", action="store_true", help="short, smaller")
    run_parser.add_argument(
        "--servers", default="chat,ergo,ngircd,inspircd", help="comma-separated"
    )
    run_parser.add_argument(
        "--ergo-bin", help="the ergo binary, in Ergo's source tree (ergo on PATH)"
    )
    run_parser.add_argument(
        "--scenarios", default="", help="comma-separated names or letters (all)"
    )
    run_parser.add_argument("--workers", type=int, default=2, help="generators")
    run_parser.add_argument("--duration", type=float, help="seconds of sending")
    run_parser.add_argument("--jsonl", type=Path, help="append JSON lines here")
    run_parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy the server while sending: collapsed stacks in DIR",
    )
    sub.add_parser("list", help="list the scenarios")
    sub.add_parser("cluster", help="cluster nodes beside one process (bench.cluster)")
    report_parser = sub.add_parser("report", help="Markdown tables of a JSONL file")
    report_parser.add_argument("jsonl", type=Path)
    args = parser.parse_args(argv)

    if args.command == "list":
        for sc in scenarios(quick=False):
            print(f"({sc.letter}) {sc.name}: {sc.title}")
        return 0

    if args.command == "report":
        lines = args.jsonl.read_text().splitlines()
        print(markdown([json.loads(line) for line in lines if line.strip()]))
        return 0

    raise_nofile()
    if args.ergo_bin:
        Ergo.path = args.ergo_bin
    wanted = [w for w in args.scenarios.split(",") if w]
    chosen = [
        sc
        for sc in scenarios(args.quick)
        if not wanted or sc.name in wanted or sc.letter in wanted
    ]
    if args.duration is not None:
        import dataclasses

        chosen = [
            dataclasses.replace(sc, duration=args.duration) if sc.duration else sc
            for sc in chosen
        ]
    names = [n for n in args.servers.split(",") if n]
    for name in names:
        if name not in SERVERS:
            parser.error(f"unknown server {name!r}")
        if not installed(name):
            how = "--ergo-bin" if name == "ergo" else f"apt-get install {name}"
            print(f"skipping {name}: not installed ({how})")
    names = [n for n in names if installed(n)]
    server_cores, gen_cores = cores()
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; {machine()}; "
        f"server on cores {sorted(server_cores)}, generators on {sorted(gen_cores)}",
        file=sys.stderr,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for sc in chosen:
            for name in names:
                server = SERVERS[name](Path(tmp), server_cores)
                profile = None
                if args.profile is not None and name == "chat":
                    args.profile.mkdir(parents=True, exist_ok=True)
                    profile = args.profile / f"{sc.name}.txt"
                try:
                    row = run(sc, server, args.workers, gen_cores, profile)
                except (RuntimeError, TimeoutError) as error:
                    row = {"scenario": sc.name, "server": name, "error": str(error)}
                    print(f"# {sc.name} on {name} failed: {error}", file=sys.stderr)
                row["title"] = sc.title
                row["letter"] = sc.letter
                row["version"] = server.version()
                print(json.dumps(row), flush=True)
                if profile is not None and profile.exists():
                    print(summarize(profile), file=sys.stderr)
                if args.jsonl:
                    write_jsonl(args.jsonl, row)
                rows.append(row)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
