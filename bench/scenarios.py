"""The benchmark scenarios: who connects, joins, sends what, and how much.

A `Scenario` splits its clients over the generator processes (client *g*
goes to process ``g % workers``) and gives each process its plan; the
runner adds up what the processes report.  Senders and the probes that
acknowledge their messages always live in the same process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Scenario:
    """One benchmark scenario and its sizes."""

    name: str
    letter: str
    title: str
    build: Callable[[Scenario, int], list[dict[str, Any]]]
    clients: int
    duration: float = 10.0
    tls: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    #: Deliveries expected per message sent (0: none expected).
    fanout: int = 0
    #: Deliveries expected per churn operation (JOIN or PART).
    churn_fanout: int = 0
    setup_timeout: float = 120.0
    concurrency: int = 100

    def specs(self, workers: int) -> list[dict[str, Any]]:
        """One spec per generator process (without host and port)."""
        specs = self.build(self, workers)
        for spec in specs:
            spec.setdefault("tls", self.tls)
            spec.setdefault("setup_timeout", self.setup_timeout)
            spec.setdefault("concurrency", max(1, self.concurrency // workers))
        return specs


def _split(nicks: list[str], workers: int) -> list[list[tuple[int, str]]]:
    """(global index, nick) of each process's clients, round robin."""
    parts: list[list[tuple[int, str]]] = [[] for _ in range(workers)]
    for g, nick in enumerate(nicks):
        parts[g % workers].append((g, nick))
    return parts


def busy_channel(sc: Scenario, workers: int) -> list[dict[str, Any]]:
    """(a) One channel of N; S senders; fixed rate or a window in flight."""
    p = sc.params
    senders, probes = p["senders"], p["probes"]
    nicks = [f"m{g}" for g in range(sc.clients)]
    rate = p.get("deliveries", 0) / (sc.clients - 1) / senders
    window = max(1, p.get("in_flight", 0) // senders) if p.get("in_flight") else 0
    specs = []
    for part in _split(nicks, workers):
        local = {g: i for i, (g, _) in enumerate(part)}
        plan_senders = [[local[g], g, ["#busy"]] for g in range(senders) if g in local]
        slow = sc.clients - p.get("slow", 0)
        others = [i for g, i in local.items() if senders <= g < slow]
        specs.append(
            {
                "nicks": [n for _, n in part],
                "joins": [["#busy"]] * len(part),
                "plan": {
                    "kind": "messages",
                    "senders": plan_senders,
                    "rate": rate,
                    "window": window,
                    "probes": others[: max(1, probes // workers)],
                    "slow": [i for g, i in local.items() if g >= slow],
                    "ordered": True,
                },
            }
        )
    return specs


def many_channels(sc: Scenario, workers: int) -> list[dict[str, Any]]:
    """(b) C channels of M members; each client is in M*C/clients channels."""
    p = sc.params
    channels, per_client = p["channels"], p["per_client"]
    senders, probes = p["senders"], p["probes"]
    nicks = [f"u{g}" for g in range(sc.clients)]

    def joins(g: int) -> list[str]:
        return [f"#c{(g * per_client + k) % channels}" for k in range(per_client)]

    rate = p["deliveries"] / (p["members"] - 1) / senders
    specs = []
    for part in _split(nicks, workers):
        local = {g: i for i, (g, _) in enumerate(part)}
        specs.append(
            {
                "nicks": [n for _, n in part],
                "joins": [joins(g) for g, _ in part],
                "plan": {
                    "kind": "messages",
                    "senders": [[local[g], g, joins(g)] for g in local if g < senders],
                    "rate": rate,
                    "probes": [i for g, i in local.items() if g >= senders][
                        : max(1, probes // workers)
                    ],
                },
            }
        )
    return specs


def private_storm(sc: Scenario, workers: int) -> list[dict[str, Any]]:
    """(c) Every client sends private messages to others of its process."""
    p = sc.params
    nicks = [f"p{g}" for g in range(sc.clients)]
    window = max(1, p["in_flight"] // sc.clients) if p.get("in_flight") else 0
    rate = p.get("deliveries", 0) / sc.clients
    specs = []
    for part in _split(nicks, workers):
        names = [n for _, n in part]
        count = len(part)
        plan_senders = []
        for i, (g, _) in enumerate(part):
            targets = [names[(i + k) % count] for k in range(1, min(count, 11))]
            plan_senders.append([i, g, targets])
        specs.append(
            {
                "nicks": names,
                "plan": {
                    "kind": "messages",
                    "senders": plan_senders,
                    "rate": rate,
                    "window": window,
                    "probes": list(range(count)),
                },
            }
        )
    return specs


def churn(sc: Scenario, workers: int) -> list[dict[str, Any]]:
    """(d) N members sit in a channel while K churners JOIN and PART it."""
    p = sc.params
    churners = p["churners"]
    members = sc.clients - churners
    nicks = [f"m{g}" for g in range(members)] + [f"ch_{k}" for k in range(churners)]
    specs = []
    for part in _split(nicks, workers):
        local = [(i, n) for i, (_, n) in enumerate(part)]
        specs.append(
            {
                "nicks": [n for _, n in local],
                "joins": [[] if n.startswith("ch_") else ["#churn"] for _, n in local],
                "pattern": "\n:ch_",
                "plan": {
                    "kind": "churn",
                    "channel": "#churn",
                    "churners": [i for i, n in local if n.startswith("ch_")],
                },
            }
        )
    return specs


def connect_only(sc: Scenario, workers: int) -> list[dict[str, Any]]:
    """(e), (f) Clients connect and register, and nothing else."""
    nicks = [f"i{g}" for g in range(sc.clients)]
    return [
        {"nicks": [n for _, n in part], "plan": {"kind": "none"}}
        for part in _split(nicks, workers)
    ]


def scenarios(quick: bool) -> list[Scenario]:
    """The full set, or a short one with smaller sizes (*quick*)."""
    d = 4.0 if quick else 10.0
    big = 1000 if quick else 2000
    return [
        Scenario(
            "busy-500-rate",
            "a",
            "one channel of 500, 50k deliveries/s",
            busy_channel,
            500,
            d,
            params={"senders": 10, "probes": 20, "deliveries": 50_000},
            fanout=499,
        ),
        Scenario(
            "busy-500-rate-tls",
            "a",
            "one channel of 500, 50k deliveries/s, TLS",
            busy_channel,
            500,
            d,
            tls=True,
            params={"senders": 10, "probes": 20, "deliveries": 50_000},
            fanout=499,
        ),
        Scenario(
            "busy-500-slow-reader",
            "a",
            "one channel of 500, 50k deliveries/s, 1 member never reads",
            busy_channel,
            500,
            d,
            params={"senders": 10, "probes": 20, "deliveries": 50_000, "slow": 1},
            fanout=498,
        ),
        Scenario(
            "busy-500-fast",
            "a",
            "one channel of 500, as fast as possible, 100 in flight",
            busy_channel,
            500,
            d,
            params={"senders": 10, "probes": 10, "in_flight": 100},
            fanout=499,
        ),
        Scenario(
            "busy-500-fast-tls",
            "a",
            "one channel of 500, as fast as possible, 100 in flight, TLS",
            busy_channel,
            500,
            d,
            tls=True,
            params={"senders": 10, "probes": 10, "in_flight": 100},
            fanout=499,
        ),
        Scenario(
            "busy-50-rate",
            "a",
            "one channel of 50, 50k deliveries/s",
            busy_channel,
            50,
            d,
            params={"senders": 10, "probes": 10, "deliveries": 50_000},
            fanout=49,
        ),
        Scenario(
            f"busy-{big}-rate",
            "a",
            f"one channel of {big}, 50k deliveries/s",
            busy_channel,
            big,
            d,
            params={"senders": 10, "probes": 20, "deliveries": 50_000},
            fanout=big - 1,
        ),
        Scenario(
            f"busy-{big}-fast",
            "a",
            f"one channel of {big}, as fast as possible, 100 in flight",
            busy_channel,
            big,
            d,
            params={"senders": 10, "probes": 10, "in_flight": 100},
            fanout=big - 1,
        ),
        Scenario(
            "channels-1000x10",
            "b",
            "1000 channels of 10 (1000 clients in 10 each), 50k deliveries/s",
            many_channels,
            1000,
            d,
            params={
                "channels": 1000,
                "members": 10,
                "per_client": 10,
                "senders": 100,
                "probes": 100,
                "deliveries": 50_000,
            },
            fanout=9,
        ),
        Scenario(
            "private-storm",
            "c",
            "1000 clients sending private messages, 1000 in flight",
            private_storm,
            1000,
            d,
            params={"in_flight": 1000},
            fanout=1,
        ),
        Scenario(
            "churn",
            "d",
            f"JOIN/PART churn by 10 clients in a channel of {big}",
            churn,
            big + 10,
            d,
            params={"churners": 10},
            churn_fanout=big,
        ),
        Scenario(
            "idle-tls",
            "e",
            f"{1000 if quick else 10000} idle TLS clients register (60 s at most)",
            connect_only,
            1000 if quick else 10000,
            0.0,
            tls=True,
            setup_timeout=60.0,
            concurrency=200,
        ),
        Scenario(
            "register",
            "f",
            f"{1000 if quick else 5000} registrations, 100 at a time",
            connect_only,
            1000 if quick else 5000,
            0.0,
            setup_timeout=60.0,
            concurrency=100,
        ),
    ]
