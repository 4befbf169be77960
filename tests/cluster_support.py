"""Cluster node processes for end-to-end tests: real nodes over TLS.

`ClusterProcessCase.node` starts one node (a child process running the
whole service) linked to the test's Redis and PostgreSQL; `user` connects a
client to it over TLS.  Used by `tests.test_cluster_network` (one network),
`tests.test_cluster_faults` (Redis and PostgreSQL going away) and
`tests.test_cluster_races` (nick, registration and channel races).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from chat.message import Message
from tests.accounts_support import PASSWORD, plain
from tests.e2e_support import LineClient, Predicate, connect_tls, is_command
from tests.redis_support import RedisServer

ROOT = Path(__file__).parent.parent

#: A node over TLS: argv is Redis URL, database, node name, data dir, cert
#: dir, then ``strict`` to count loopback in the per-address limits (it is
#: exempt by default).  It logs to ``node.log`` in its data dir (its
#: stderr goes to ``node.err`` there), serves its
#: metrics on a free loopback port and prints its TLS and metrics ports once
#: it is linked to the cluster.
_NODE = """
import sys
from pathlib import Path
from twisted.internet import reactor
from twisted.internet.task import LoopingCall
from twisted.logger import globalLogBeginner, textFileLogObserver
from chat.config import Cluster, Limits, ServerConfig
from chat.service import makeService

redis, database, name, data, certs = sys.argv[1:6]
log = open(Path(data) / "node.log", "a")
globalLogBeginner.beginLoggingTo([textFileLogObserver(log)], redirectStandardIO=False)
strict = sys.argv[6:] == ["strict"]
config = ServerConfig(
    server_name="irc.test",
    port=None,
    listen=("tls:tcp:0:interface=127.0.0.1",),
    data_dir=Path(data),
    cert_dir=Path(certs),
    database=database,
    cluster=Cluster(redis=redis, node_name=name, lease=3.0),
    limits=Limits(exempt=()) if strict else Limits(),
    metrics="tcp:0:interface=127.0.0.1",
)
service = makeService(config, reactor=reactor)
service.startService()

def linked():
    port = service.tls_port()
    metrics = service.metrics.port
    if service.cluster.linked and port and metrics is not None:
        print(port, metrics.getHost().port, flush=True)
        waiting.stop()

waiting = LoopingCall(linked)
waiting.start(0.05)
reactor.run()
"""

CAPS = "echo-message server-time message-tags batch draft/chathistory sasl"


def is_privmsg(text: str) -> Predicate:
    """A predicate matching a PRIVMSG whose text is *text*."""

    def match(message: Message) -> bool:
        return message.command == "PRIVMSG" and message.params[-1:] == (text,)

    return match


class ClusterProcessCase(TestCase):
    """A test with node processes on ``self.redis`` and ``self.database``,
    sharing the development CA in ``self.certs`` (set them first)."""

    timeout = 90
    redis: RedisServer
    database: str
    certs: Path

    def setUp(self) -> None:
        #: Each node's metrics port, by node name.
        self.metrics_ports: dict[str, int] = {}

    async def node(
        self, name: str, strict: bool = False
    ) -> tuple[subprocess.Popen[str], int]:
        """Start node *name*; the process and its TLS port, once linked."""
        data = Path(self.mktemp()).absolute()
        data.mkdir(parents=True)
        errors = (data / "node.err").open("w")
        self.addCleanup(errors.close)
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _NODE,
                self.redis.url,
                self.database,
                name,
                str(data),
                str(self.certs),
                *(["strict"] if strict else []),
            ],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            cwd=ROOT,
        )
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        assert child.stdout is not None
        self.addCleanup(child.stdout.close)
        # Read the ports off the reactor thread: a node that never starts
        # fails the test at its timeout instead of hanging the run.
        line = await deferToThread(child.stdout.readline)
        port, metrics = line.split()
        self.metrics_ports[name] = int(metrics)
        return child, int(port)

    async def user(self, port: int, nick: str) -> LineClient:
        """A client over TLS on *port*, with `CAPS`, registered as *nick*."""
        client = await connect_tls(port, self.certs / "ca.pem")
        self.addCleanup(client.transport.loseConnection)
        client.send("CAP", "REQ", CAPS)
        await client.wait_for(is_command("CAP", "*", "ACK"))
        client.send("CAP", "END")
        await client.register(nick)
        return client

    async def sasl(self, port: int, account: str) -> Message:
        """Log in to *account* (password `PASSWORD`) over SASL PLAIN on
        *port*: the 903 or 904 that answers."""
        login = await connect_tls(port, self.certs / "ca.pem")
        self.addCleanup(login.transport.loseConnection)
        login.send("CAP", "REQ", "sasl")
        login.send("AUTHENTICATE", "PLAIN")
        await login.wait_for(is_command("AUTHENTICATE", "+"))
        login.send("AUTHENTICATE", plain(account, PASSWORD))
        return await login.wait_for(lambda m: m.command in ("903", "904"))
