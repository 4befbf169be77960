"""A chosen subset of the end-to-end suite, again on a two-node cluster.

Each class here is an existing TestCase whose body runs unchanged, once on
one server (in its own module) and once here on two nodes of one cluster
(`tests.e2e_support.start_network`: a Redis of the test's own, one
PostgreSQL database for accounts and history, loopback TLS), the k-th
client connecting to node k % 2.  So the second user of a test is on the
other node than the first, and every channel, message, mode, query and
login in it crosses nodes.

Included, and what it covers of the cluster's guarantees:

- `test_client_e2e.ClientAgainstServerTests`, the project's client against
  the server: channel chat with NAMES and prefixes, PART, private messages,
  ACTION; history played back on join (CHATHISTORY from the shared
  database); typed commands (JOIN, WHOIS, TOPIC, errors); REGISTER on one
  node then SASL PLAIN and SASL EXTERNAL with a certificate added by
  NickServ on the other; a nick in use on the other node (433, the client
  picks another); a rejoin after the channel emptied and was made again
  (topic, modes, NAMES rebuilt); CTCP, /op /deop /voice (MODE), /ignore,
  WHOIS, SEARCH, /kickban (KICK and a ban that holds across nodes);
  highlights and private messages across nodes.  Left out are its tests of
  the client's TLS verification, status line, logs and second network:
  they test the client, not the server, and gain nothing from two nodes.
- `test_e2e.ManyClientsTests.test_eight_tls_clients_chat_in_one_channel`:
  eight clients, four on each node, one channel: every line is seen once
  by every other member, none twice (its other tests are about listeners).
- `test_ircv3_e2e.HistoryEndToEndTests`: message-tags, labeled-response,
  echo-message and TAGMSG across nodes (msgids equal on both ends), and
  CHATHISTORY of a channel and of a private conversation after the whole
  network restarted (same database), refused to a non-member.
- `test_ircv3_features_e2e.FeaturesEndToEndTests`: draft/multiline batches
  to members on the other node (and their fallback lines), REDACT, and
  soju.im/search after a restart of the network.
- `test_history_stores_e2e.PostgresHistoryStoreTests`: every CHATHISTORY
  selection (LATEST, BEFORE, AFTER, AROUND, BETWEEN, TARGETS) asked on the
  other node than the sender's, and private history after a restart.

Left out, and why:

- The protocol-unit modules (test_channels, test_messaging, test_modes,
  test_queries, test_ircv3_*, test_accounts, test_sasl's PLAIN/SCRAM
  classes...) run a `ChatServer` on a `Clock` and check each reply
  synchronously, right after the line that caused it.  Against Redis every
  cross-node step is asynchronous, so their bodies cannot run unchanged;
  WHO, LUSERS, ISON, USERHOST, AWAY, MONITOR, KILL, concurrent MODE/KICK
  and nick races across nodes are tested in `tests.test_cluster` instead.
- test_e2e's listener, shutdown, TLS version, certificate reload, log
  secrecy and SQLite storage tests, test_flood_e2e and test_history_stores'
  SQLite class: they are about one process (its sockets, files and
  limits), not about users on several nodes.  Network-wide limits are
  another piece of work.
- test_web_e2e and test_web_browser: the web client's gateway is per node.

What these runs (and the interop test) found, each fixed with a focused
test in `tests.test_cluster`: a message to a user just welcomed on the
other node got 401 (the announcement was still on the bus); a nick given
up on the other node got 433 until the news arrived; the replies of a
command run on a channel's home could come after the next line's (or be
lost when that line changed the nick); a line after a command whose home
was being looked up wedged the connection; WHO named the answering node,
not the user's; LUSERS counted other nodes' users as negative unknown
connections.  `AlternationTests` checks the clients really alternate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar, cast

from twisted.trial.unittest import TestCase

from tests import test_client_e2e as client_e2e
from tests import test_e2e as e2e
from tests import test_history_stores_e2e as stores_e2e
from tests import test_ircv3_e2e as ircv3_e2e
from tests import test_ircv3_features_e2e as features_e2e
from tests.e2e_support import TLS_LOOPBACK, RunningNetwork, start_network
from tests.services_support import postgres_database

Case = TypeVar("Case", bound=type)


def only(source: Case, *tests: str) -> Case:
    """*source* with only the test methods named *tests* (helpers kept)."""
    names = {name for name in vars(source) if name.startswith("test")}
    missing = set(tests) - names
    assert not missing, f"no such tests in {source.__name__}: {missing}"
    namespace = {
        name: value
        for name, value in vars(source).items()
        if name not in ("__dict__", "__weakref__")
        and (not name.startswith("test") or name in tests)
    }
    return cast(Case, type(source.__name__, source.__bases__, namespace))


class OnTwoNodes:
    """Mixin: `serve` starts a two-node network instead of one server.

    One database per test, kept across a restart of the network.
    """

    def serve(self, *listen: str, **settings: Any) -> RunningNetwork:
        assert listen in ((), (TLS_LOOPBACK,)), "the nodes listen on TLS only"
        case = cast(TestCase, self)
        if not hasattr(self, "network_database"):
            self.network_database = postgres_database()
        return start_network(case, database=self.network_database, **settings)


class ClientOnTwoNodesTests(
    only(
        client_e2e.ClientAgainstServerTests,
        "test_two_people_chat_in_a_channel",
        "test_history_is_loaded_on_join",
        "test_typed_commands_and_replies_in_the_asking_buffer",
        "test_sasl_plain_login_and_failure",
        "test_sasl_external_with_a_client_certificate",
        "test_nick_in_use_picks_another",
        "test_rejoin_rebuilds_topic_modes_and_nicks",
        "test_ctcp_ignore_and_operator_commands",
        "test_bell_and_notification_on_highlight_and_private_message",
    )
):
    async def setUp(self) -> None:
        self.server: RunningNetwork = start_network(self)
        await self.server.ready()


class ManyClientsOnTwoNodesTests(
    OnTwoNodes,
    only(e2e.ManyClientsTests, "test_eight_tls_clients_chat_in_one_channel"),
):
    pass


class HistoryOnTwoNodesTests(OnTwoNodes, ircv3_e2e.HistoryEndToEndTests):
    pass


class FeaturesOnTwoNodesTests(OnTwoNodes, features_e2e.FeaturesEndToEndTests):
    pass


class HistoryStoreOnTwoNodesTests(stores_e2e.PostgresHistoryStoreTests):
    def start(self) -> RunningNetwork:
        settings = dict(self.settings)
        return start_network(
            self, database=settings.pop("database"), data_dir=Path(self.mktemp())
        )


class AlternationTests(OnTwoNodes, TestCase):
    async def test_the_kth_client_is_on_node_k_mod_2(self) -> None:
        network = self.serve()
        clients = [await network.client(f"user{k}") for k in range(3)]
        clients[0].send("WHOIS", "user1")
        clients[0].send("WHOIS", "user2")
        nodes = []
        for _ in range(2):
            reply = await clients[0].wait_for(lambda m: m.command == "312")
            nodes.append(reply.params[1:3])
        self.assertEqual(nodes, [("user1", "node1"), ("user2", "node0")])
