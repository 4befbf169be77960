"""Three node processes over TLS with Redis and PostgreSQL: one network.

Clients are spread over the nodes; accounts and history live in one
PostgreSQL, users, nicks and channels are shared through one Redis.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.accounts_support import PASSWORD
from tests.cluster_support import ClusterProcessCase, is_privmsg
from tests.e2e_support import is_command
from tests.redis_support import start_redis
from tests.services_support import postgres_database


class ThreeNodeNetworkTests(ClusterProcessCase):
    async def test_three_nodes_form_one_network(self) -> None:
        self.redis = start_redis(self)
        self.database = postgres_database()
        self.certs = Path(self.mktemp()).absolute()
        # One after the other: the first makes the development CA.
        _, port_a = await self.node("a")
        node_b, port_b = await self.node("b")
        _, port_c = await self.node("c")
        alice = await self.user(port_a, "alice")
        bob = await self.user(port_b, "bob")
        carol = await self.user(port_c, "carol")

        # Accounts are the network's: registered on a, used on c.
        alice.send("REGISTER", "*", "*", PASSWORD)
        await alice.wait_for(is_command("REGISTER", "SUCCESS"))
        self.assertEqual((await self.sasl(port_c, "alice")).command, "903")

        # One channel, members on three nodes, one order for everyone.
        for client in (alice, bob, carol):
            client.send("JOIN", "#net")
            await client.wait_for(is_command("366"))
        await alice.wait_for(lambda m: m.command == "JOIN" and "carol" in str(m.source))
        texts = [f"{who}-{n}" for n in range(5) for who in ("a", "b", "c")]
        for text in texts:
            sender = {"a": alice, "b": bob, "c": carol}[text[0]]
            sender.send("PRIVMSG", "#net", text)
        seen = []
        for client in (alice, bob, carol):
            for text in texts:
                await client.wait_for(is_privmsg(text))
            seen.append(
                [
                    m.params[-1]
                    for m in client.received
                    if m.command == "PRIVMSG" and m.params[0] == "#net"
                ]
            )
        self.assertEqual(seen[0], seen[1])
        self.assertEqual(seen[1], seen[2])
        self.assertEqual(sorted(seen[0]), sorted(texts), "nothing lost or doubled")

        # History is the same on every node, in that order.
        for client in (bob, carol):
            client.send("CHATHISTORY", "LATEST", "#net", "*", "50")
            await client.wait_for(
                lambda m: m.command == "BATCH" and m.params[0].startswith("-")
            )
        history_b = [
            m.params[-1]
            for m in bob.received
            if m.command == "PRIVMSG" and "batch" in m.tags
        ]
        history_c = [
            m.params[-1]
            for m in carol.received
            if m.command == "PRIVMSG" and "batch" in m.tags
        ]
        self.assertEqual(history_b, seen[0])
        self.assertEqual(history_c, seen[0])

        # Private messages cross nodes.
        alice.send("PRIVMSG", "carol", "just you")
        try:
            await carol.wait_for(is_privmsg("just you"))
        except Exception:
            print(
                "DIAG",
                [m.to_line() for m in alice.received[-5:]],
                [m.to_line() for m in carol.received[-5:]],
            )
            raise

        # Node b dies: bob quits, once, for everyone else.
        os.kill(node_b.pid, signal.SIGKILL)
        for client in (alice, carol):
            quit_ = await client.wait_for(is_command("QUIT"), timeout=10)
            self.assertEqual(quit_.params, ("*.net *.split",))
            self.assertTrue(str(quit_.source).startswith("bob!"))
        alice.send("PING", "after")
        await alice.wait_for(is_command("PONG"))
        self.assertEqual(len([m for m in alice.received if m.command == "QUIT"]), 1)
        alice.take(is_command("353"))
        alice.send("NAMES", "#net")
        names = await alice.wait_for(is_command("353"))
        self.assertEqual(sorted(names.params[-1].split()), ["@alice", "carol"])
