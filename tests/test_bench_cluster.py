"""The bookkeeping of the cluster benchmark (`bench.cluster`): what its probes
count as lost, duplicated, same-node and cross-node, and how Redis calls per
message are worked out.  No server and no timing: lines are fed to a probe."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from twisted.trial.unittest import TestCase

from bench.cluster import probe_figures, redis_per_message
from bench.clustergen import ClusterGenerator
from bench.clusterscenarios import pairs, scenarios
from bench.loadgen import Client


def probe_result(lines: list[bytes]) -> dict[str, Any]:
    """The RESULT of a process whose probe (on node 0) got *lines*, as the
    coordinator reads it (through JSON); sender 7 is on node 1, 8 on 0."""
    spec = {
        "port": 1,
        "nicks": ["probe"],
        "nodes": [0],
        "gid_nodes": {"7": 1, "8": 0},
        "plan": {"kind": "none", "probes": [0], "expect": {"0": [7, 8]}},
    }

    async def run() -> dict[str, Any]:
        gen = ClusterGenerator(spec)
        gen.clients = [Client(gen, 0, "probe")]
        gen.clients[0].setup = False
        await gen.send(0.0)
        for line in lines:
            gen.clients[0].data_received(line)
        return json.loads(json.dumps(gen.result(0.0)))

    return asyncio.run(run())


def privmsg(gid: int, seq: int) -> bytes:
    return b":s!u@h PRIVMSG probe :%d %d 0 xxxx\r\n" % (gid, seq)


class ProbeTests(TestCase):
    def test_lost_and_duplicated_are_counted_per_sender(self) -> None:
        # Sender 7 sent 4 and the probe got 1, 2, 2, 4; sender 8 sent 2, got 2.
        lines = [privmsg(7, 1), privmsg(7, 2) + privmsg(7, 2), privmsg(8, 1)]
        lines += [privmsg(7, 4), privmsg(8, 2)]
        result = probe_result(lines)
        result["sent_by"] = {"7": 4, "8": 2}
        figures = probe_figures(2, [result], {7: 1, 8: 0})
        self.assertEqual(figures["probe_deliveries"], 6)
        self.assertEqual(figures["probe_lost"], 1)
        self.assertEqual(figures["probe_duplicated"], 1)
        self.assertEqual(figures["sent_by_node"], {"b": 4, "a": 2})

    def test_deliveries_are_split_by_node(self) -> None:
        result = probe_result([privmsg(7, 1), privmsg(7, 2), privmsg(8, 1)])
        result["sent_by"] = {"7": 2, "8": 1}
        figures = probe_figures(2, [result], {7: 1, 8: 0})
        self.assertEqual(figures["cross_node_samples"], 2)
        self.assertEqual(figures["same_node_samples"], 1)
        self.assertEqual(figures["probe_lost"], 0)

    def test_a_sender_never_heard_counts_all_its_messages_lost(self) -> None:
        result = probe_result([privmsg(8, 1)])
        result["sent_by"] = {"7": 3, "8": 1}
        figures = probe_figures(2, [result], {7: 1, 8: 0})
        self.assertEqual(figures["probe_lost"], 3)

    def test_lines_from_senders_not_expected_are_set_apart(self) -> None:
        result = probe_result([privmsg(9, 1), privmsg(8, 1)])
        self.assertEqual(result["unexpected"], 1)
        self.assertEqual(result["heard"], {"7": [1, 0], "8": [1, 1]})


class RedisCallsTests(TestCase):
    def test_calls_per_message_less_the_background(self) -> None:
        per_message = redis_per_message(
            {"publish": 100, "set": 10, "info": 3},
            {"publish": 400, "set": 13, "info": 9, "exists": 11},
            {"set": 0.5, "exists": 1.0},
            10.0,
            100,
        )
        # 300 publishes; set: 3 - 5 of background, no fewer than none; the
        # bench's own INFO left out.
        self.assertEqual(per_message, {"exists": 0.01, "publish": 3.0, "total": 3.01})


class ScenarioTests(TestCase):
    def test_pairs_are_half_within_a_node_half_across(self) -> None:
        sc = next(s for s, _ in scenarios(1.0, 100) if s.name == "pairs")
        specs = pairs(sc, 2)
        kinds = {"same": 0, "cross": 0}
        for spec in specs:
            for index, gid, (target,) in spec["plan"]["senders"]:
                receiver = spec["nicks"].index(target)
                self.assertEqual(spec["plan"]["expect"][str(receiver)], [gid])
                same = spec["nodes"][index] == spec["nodes"][receiver]
                kinds["same" if same else "cross"] += 1
        self.assertEqual(kinds, {"same": 20, "cross": 20})

    def test_clients_of_each_process_alternate_between_nodes(self) -> None:
        sc = next(s for s, _ in scenarios(1.0, 100) if s.name == "busy-500-rate")
        for spec in sc.specs(2):
            self.assertEqual(spec["nodes"][:4], [0, 1, 0, 1])
            self.assertEqual(len(spec["nodes"]), 250)
