"""Cluster mode with real node processes: one is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import TestCase

from chat.message import Message
from tests.e2e_support import LineClient, connect_plain, is_command
from tests.redis_support import start_redis

#: A whole node in a child process: argv is Redis URL, node name, data dir.
#: It prints its plaintext port once it is linked to the cluster.
_NODE = """
import sys
from pathlib import Path
from twisted.internet import reactor
from twisted.internet.task import LoopingCall
from chat.config import Cluster, ServerConfig
from chat.service import makeService

url, name, data = sys.argv[1], sys.argv[2], Path(sys.argv[3])
config = ServerConfig(
    server_name=f"{name}.test",
    port=None,
    listen=("tcp:0:interface=127.0.0.1",),
    data_dir=data,
    cert_dir=data / "certs",
    cluster=Cluster(redis=url, node_name=name, lease=1.0),
)
service = makeService(config, reactor=reactor)
service.startService()

def linked():
    if service.cluster.linked and service.listeners[0].port is not None:
        print(service.listeners[0].port.getHost().port, flush=True)
        waiting.stop()

waiting = LoopingCall(linked)
waiting.start(0.05)
reactor.run()
"""


class NodeProcesses(TestCase):
    timeout = 60

    def node(self, url: str, name: str) -> tuple[subprocess.Popen[str], int]:
        data = Path(self.mktemp()).absolute()
        child = subprocess.Popen(
            [sys.executable, "-c", _NODE, url, name, str(data)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parent.parent,
        )
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        assert child.stdout is not None
        self.addCleanup(child.stdout.close)
        return child, int(child.stdout.readline())

    async def user(self, port: int, nick: str) -> LineClient:
        client = await connect_plain(port)
        await client.register(nick)
        self.addCleanup(client.transport.loseConnection)
        return client

    async def test_kill_9_of_a_node_frees_its_nicks_and_a_restart_is_clean(
        self,
    ) -> None:
        redis = start_redis(self)
        _, port_a = self.node(redis.url, "a")
        b, port_b = self.node(redis.url, "b")
        alice = await self.user(port_a, "alice")
        await self.user(port_b, "bob")
        alice.send("MONITOR", "+", "bob")
        await alice.wait_for(is_command("730"))
        # A 731 from before bob's node told ours about him is old news.
        alice.take(is_command("731"))
        alice.send("PRIVMSG", "bob", "are you there")

        os.kill(b.pid, signal.SIGKILL)
        # Within the lease (1 s here) and a renewal period, bob is gone.
        offline = await alice.wait_for(is_command("731"), timeout=5)
        self.assertEqual(offline.params[-1], "bob")
        alice.send("ISON", "bob")
        ison = await alice.wait_for(is_command("303"))
        self.assertEqual(ison.params[-1], "")

        # The nick is free on the surviving node...
        taker = await self.user(port_a, "bob")
        taker.send("QUIT")
        await taker.lost
        # ...and the restarted node rejoins cleanly, without ghosts.
        _, port_b = self.node(redis.url, "b")
        bob = await self.user(port_b, "bob")
        bob.send("WHOIS", "alice")
        server = await bob.wait_for(is_command("312"))
        self.assertEqual(server.params[2], "a")
        bob.send("PRIVMSG", "alice", "back")
        got = await alice.wait_for(
            lambda m: isinstance(m, Message) and m.command == "PRIVMSG"
        )
        self.assertEqual(got.params, ("alice", "back"))
