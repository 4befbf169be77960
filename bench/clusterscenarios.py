"""The scenarios of the cluster bench: who connects to which node, and sends.

Each builder returns one spec per generator process, as `bench.scenarios`
does, plus ``nodes``: the node (0 or 1) of each client, which
`bench.cluster` turns into that node's port (every client on the one port
of a single process).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.scenarios import Scenario, _split, busy_channel, connect_only


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
