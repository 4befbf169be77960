"""A load generator for the cluster benchmarks (``python -m bench.clustergen``).

The generator of `bench.loadgen`, with its clients spread over the nodes'
ports (``ports`` in the spec), whose probes also

- split their latencies into *same-node* (sender and probe on one node) and
  *cross-node* ones, from ``nodes`` (the node of each client of this
  process) and ``gid_nodes`` (the node of every sender, in all processes);
- keep, per sender, the set of sequence numbers they received, so that the
  coordinator counts exactly what each probe lost (sent by that sender and
  never seen) and what it received twice.

The result also says how many messages each sender sent (``sent_by``).
"""

from __future__ import annotations

from typing import Any

from bench.loadgen import Client, Generator, _sample, main


class ClusterGenerator(Generator):
    """`Generator` whose probes tell same-node from cross-node deliveries and
    count each sender's sequence numbers."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.nodes: list[int] = spec.get("nodes") or [0] * len(self.nicks)
        self.gid_nodes = {int(g): n for g, n in spec.get("gid_nodes", {}).items()}
        #: Latencies (ns) of deliveries within one node, and across nodes.
        self.split: dict[str, list[int]] = {"same": [], "cross": []}
        #: (probe index, sender gid) -> sequence numbers seen.
        self.seqs: dict[tuple[int, int], set[int]] = {}
        self.duplicates = 0
        #: Lines a probe got from a sender it should not hear from.
        self.unexpected = 0
        #: The senders each probe should hear from (all senders by default).
        self.expect: dict[int, list[int]] = {}

    async def send(self, duration: float) -> None:
        plan = self.spec.get("plan", {})
        everyone = list(self.gid_nodes)
        for index in plan.get("probes", []):
            wanted = plan.get("expect", {}).get(str(index), everyone)
            self.expect[index] = wanted
            for gid in wanted:
                self.seqs[(index, gid)] = set()
        await super().send(duration)

    def parse(self, client: Client, lines: bytes) -> None:
        super().parse(client, lines)
        now = self.now_ns()
        here = self.nodes[client.index]
        for line in lines.split(b"\n"):
            if self.pattern not in line:
                continue
            body = line[line.find(b" :", 1) + 2 :].split(b" ", 3)
            try:
                gid, seq, sent_ns = int(body[0]), int(body[1]), int(body[2])
            except (ValueError, IndexError):
                continue
            kind = "same" if self.gid_nodes.get(gid) == here else "cross"
            self.split[kind].append(now - sent_ns)
            seen = self.seqs.get((client.index, gid))
            if seen is None:
                self.unexpected += 1
            elif seq in seen:
                self.duplicates += 1
            else:
                seen.add(seq)

    def result(self, cpu_seconds: float) -> dict[str, Any]:
        out = super().result(cpu_seconds)
        heard: dict[int, list[int]] = {}
        for (_, gid), seen in self.seqs.items():
            # [probes expected to hear gid, distinct sequence numbers heard]
            entry = heard.setdefault(gid, [0, 0])
            entry[1] += len(seen)
        for wanted in self.expect.values():
            for gid in wanted:
                heard.setdefault(gid, [0, 0])[0] += 1
        out.update(
            sent_by={gid: s.sent for gid, s in self.senders.items()},
            heard=heard,
            duplicates=self.duplicates,
            unexpected=self.unexpected,
            same_ns=_sample(self.split["same"]),
            cross_ns=_sample(self.split["cross"]),
        )
        return out


if __name__ == "__main__":
    main(ClusterGenerator)
