"""draft/multiline across the nodes of a cluster (Redis, tests.redis_support)."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chat.cluster.wire import channel_parts, json_relay, relay_json
from chat.message import Message, parse
from chat.multiline import MultilineRelay
from chat.relay import Relay
from tests.redis_support import start_redis
from tests.support import Harness
from tests.test_cluster import Network, eventually

CAPS = "CAP REQ :draft/multiline batch message-tags"


class WireTests(TestCase):
    def test_a_multiline_relay_crosses_whole(self) -> None:
        start = Relay(Message("BATCH", ("+r1", "draft/multiline", "#t"), "a!u@h"), 5.0)
        lines = [("one", False), ("two", True)]
        relay = MultilineRelay(start, "r1", "PRIVMSG", "#t", lines)
        again = json_relay(relay_json(relay))
        assert isinstance(again, MultilineRelay)
        self.assertEqual((again.ref, again.target, again.lines), ("r1", "#t", lines))
        self.assertEqual(again.msgid, relay.msgid)

    def test_batched_lines_are_not_routed(self) -> None:
        client = Harness().register("alice")
        line = parse("@batch=r1 PRIVMSG #t :one")
        self.assertIsNone(channel_parts(client.conn, line, 4))
        self.assertIsNotNone(channel_parts(client.conn, parse("PRIVMSG #t :x"), 4))


class ClusterMultilineTests(TestCase):
    timeout = 30

    async def test_members_on_another_node_get_the_batch_or_the_lines(self) -> None:
        network = Network(self, start_redis(self))
        a = await network.node("a")
        b = await network.node("b")
        alice = await network.user(a, "alice")
        bob = await network.user(b, "bob")
        carol = await network.user(b, "carol")
        await eventually(lambda: a.find_user("carol") is not None)
        for client in (alice, bob):
            client.send(CAPS)
        for client, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
            client.send("JOIN #team")
            await eventually(lambda c=client, n=name: c.saw(f" 366 {n} #team "))
        await eventually(lambda: len(a.channels["#team"].members) == 3)
        alice.send(
            "BATCH +p draft/multiline #team",
            "@batch=p PRIVMSG #team :first",
            "@batch=p PRIVMSG #team :second",
            "BATCH -p",
        )
        await eventually(lambda: bob.saw("BATCH -"))
        got = [m for m in map(parse, bob.read()) if m.params[:1] == ("#team",)]
        texts = [m.params[1] for m in got if m.command == "PRIVMSG"]
        self.assertEqual(texts, ["first", "second"])
        self.assertTrue(all("batch" in m.tags for m in got if m.command == "PRIVMSG"))
        await eventually(lambda: carol.saw("PRIVMSG #team :second"))
        self.assertFalse(carol.saw("BATCH"))
        self.assertFalse(alice.saw("FAIL"))
