"""ClusterNode: this server's link to the other nodes of its network.

See `chat.cluster` for what is shared and how.  The node is a service:
started, it links to Redis (two connections, commands and the bus reader
of `chat.cluster.bus`, each reconnecting with backoff), renews its lease,
reaps dead nodes and keeps one remote session per user of every other node.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import txredisapi
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat.casemap import CHANTYPES, casefold
from chat.cluster import RedisAddress
from chat.cluster.bus import BacklogFullError, StreamBus
from chat.cluster.remote import (
    identity_of,
    own_source,
    remote_session,
    update_session,
)
from chat.cluster.shared import RedisState
from chat.cluster.wire import (
    STATE_COMMANDS,
    apply_snapshot,
    channel_parts,
    drop_channel,
    json_relay,
    relay_json,
    snapshot,
)
from chat.message import Message, parse
from chat.network import NickUnavailableError
from chat.router import Audience
from chat.services import Later

if TYPE_CHECKING:
    from chat.labeled import Response
    from chat.protocol import ChatProtocol
    from chat.relay import Relay
    from chat.server import ChatServer

PREFIX = "chat:"
NODES = PREFIX + "nodes"
NICKS = PREFIX + "nicks"
ALL = PREFIX + "all"
#: Channel homes (folded name -> node) and snapshots (folded name -> JSON).
HOMES = PREFIX + "chanhome"
CHANNELS = PREFIX + "chans"
SPLIT_REASON = "*.net *.split"
#: Seconds a routed command may wait for its channel's home to answer.
ASK_TIMEOUT = 30.0
#: Entries each bus stream keeps (``MAXLEN ~``) by default.
STREAM_LENGTH = 10_000

#: Claim a nick: free, already ours, or held by a node whose lease is gone.
CLAIM = """
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner and owner ~= ARGV[2] then
    local node, boot = string.match(owner, '^([^/]+)/([^/]+)/')
    if redis.call('GET', ARGV[3] .. node) == boot then
        return 0
    end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""
#: Give a nick back, if it is still ours.
RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
    redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1
"""
#: Forget a node: its users' nicks, its users, its entry, and (unless
#: forced: a node cleaning up after its own previous run, which reads its
#: inbox) its inbox.  Unless forced, only without a lease.
REAP = """
if ARGV[2] ~= '1' then
    if redis.call('EXISTS', KEYS[3]) == 1 then
        return 0
    end
    redis.call('DEL', KEYS[6])
end
local prefix = ARGV[1] .. '/'
for _, folded in ipairs(redis.call('HKEYS', KEYS[2])) do
    local owner = redis.call('HGET', KEYS[1], folded)
    if owner and string.sub(owner, 1, #prefix) == prefix then
        redis.call('HDEL', KEYS[1], folded)
    end
end
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[4], ARGV[1])
local homes = redis.call('HGETALL', KEYS[5])
for i = 1, #homes, 2 do
    if homes[i + 1] == ARGV[1] then
        redis.call('HDEL', KEYS[5], homes[i])
    end
end
return 1
"""
#: Become a channel's home unless it has one; answer the home.
HOME = """
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HGET', KEYS[1], ARGV[1])
"""

log = Logger()


class NodeGoneError(Exception):
    """The node a routed command waited for is gone."""


def _users_key(node: str) -> str:
    return f"{PREFIX}users:{node}"


def _lease_key(node: str) -> str:
    return f"{PREFIX}node:{node}"


def _inbox(node: str) -> str:
    return f"{PREFIX}to:{node}"


class NodeLink:
    """The router's sink for another node: relays to its users, batched per
    turn into one message on its inbox."""

    def __init__(self, node: ClusterNode, name: str) -> None:
        self.node = node
        self.name = name

    def transmit(self, data: bytes) -> None:
        self.node.publish_raw(_inbox(self.name), data.decode("utf-8").rstrip("\n"))


class ClusterNode(Service):
    """One node of a cluster; also the server's `chat.network.Network`."""

    def __init__(
        self,
        server: ChatServer,
        address: RedisAddress,
        name: str,
        lease: float,
        stream_length: int = STREAM_LENGTH,
    ) -> None:
        self.server = server
        self.address = address
        self.node_name = name
        self.lease = lease
        self.stream_length = stream_length
        self.boot = os.urandom(6).hex()
        #: Remote sessions by node, then folded nick.
        self.remote: dict[str, dict[str, ChatProtocol]] = {}
        #: The other nodes alive, as last seen (LUSERS counts them).
        self.peers: set[str] = set()
        self.linked = False
        self.redis: Any = None
        self.bus: StreamBus | None = None
        self._tick = LoopingCall(self._renew)
        self._tick.clock = server.clock
        self._ever_linked = False
        self._renewing = False
        #: Until then (a lease after a sync) no node is reaped here.
        self._grace_until = 0.0
        #: Fires on the first sync: until then new nicks wait for it.
        self._first_link: Deferred[None] = Deferred()
        #: Channel homes known here: folded name -> node.
        self.homes: dict[str, str] = {}
        #: Routed commands waiting for their home's answer, by id.
        self._asks: dict[int, tuple[str, Deferred[None]]] = {}
        self._ask_ids = itertools.count(1)
        self._links: dict[str, NodeLink] = {}
        #: Client limit, login throttles, WHOWAS, ChanServ's list.
        self.shared = RedisState(self, lambda event: self._publish(ALL, event))

    # -- service ----------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self.server.network = self
        self.server.node_name = self.node_name
        self.shared.start()
        reactor: Any = self.server.clock
        self.redis = txredisapi.lazyConnection(
            self.address.host,
            self.address.port,
            self.address.db,
            reconnect=True,
            convertNumbers=False,
            replyTimeout=max(10.0, self.lease),
        )
        self.bus = StreamBus(
            self,
            reactor,
            self.redis,
            self.address,
            self.node_name,
            (ALL, _inbox(self.node_name)),
            self.stream_length,
            block=self.lease / 2,
            clock=self.server.clock,
        )
        self.bus.start()
        self._tick.start(self.lease / 4, now=False)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        if self._tick.running:
            self._tick.stop()
        self.shared.stop()
        done: Deferred[Any] = succeed(None)
        if self.linked:
            # A clean stop: the others need not wait for the lease to expire.
            done = self._reap(self.node_name, force=True)
            done.addCallback(
                lambda _: self._publish(ALL, {"e": "gone", "n": self.node_name})
            )
            done.addErrback(lambda _: None)
        done.addCallback(lambda _: self._forget_remote())
        return done.addCallback(lambda _: self._disconnect())

    def _forget_remote(self) -> None:
        for node in list(self.remote):
            self._drop_node(node)
        self._set_peers(set())

    def _set_peers(self, peers: set[str]) -> None:
        self.peers = peers - {self.node_name}
        self.server.server_count = 1 + len(self.peers)

    def _disconnect(self) -> Deferred[None]:
        self.linked = False
        waits: list[Deferred[Any]] = []
        if self.bus is not None:
            waits.append(self.bus.stop())
        if self.redis is not None:
            waits.append(self.redis.disconnect())
        return gatherResults(waits, consumeErrors=True).addBoth(lambda _: None)

    # -- the link ---------------------------------------------------------

    def link_up(self) -> None:
        """The bus reads again (first time or after Redis came back): sync."""
        self._sync().addCallbacks(self._synced, self._sync_failed)

    def link_lost(self) -> None:
        """Events for us were trimmed away unread: tell, and sync again."""
        self._resync(
            "This server fell behind the network: messages sent to you "
            "meanwhile may have been lost."
        )

    def sends_lost(self) -> None:
        """Events we published were dropped (Redis away too long): tell, and
        sync again (publishing our users anew) once Redis answers."""
        self._resync(
            "This server could not reach the network for too long: messages "
            "sent meanwhile may not have reached other servers."
        )

    def _resync(self, notice: str) -> None:
        """Tell local users *notice*; sync again if we were linked."""
        self._tell_local(notice)
        if self.linked:
            self.linked = False
            self.link_up()

    def link_down(self) -> None:
        if not self.linked:
            return
        self.linked = False
        log.warn("Cluster: lost the link to Redis; reconnecting")
        self._tell_local(
            "This server lost its link to the rest of the network: you can "
            "still talk with users here; new nicks wait until it is back."
        )

    def _synced(self, _: object) -> None:
        again, self._ever_linked = self._ever_linked, True
        self.linked = True
        if not again:
            self._first_link.callback(None)
        log.info("Cluster: node {name} linked", name=self.node_name)
        if again:
            self._tell_local("This server is linked to the network again.")

    def _sync_failed(self, failure: Failure) -> None:
        log.warn("Cluster: sync with Redis failed: {error}", error=failure.value)

    async def _sync_steps(self) -> None:
        redis = self.redis
        # The nodes not listed now may only be late to sync (Redis came back
        # empty: no lease is left): they get a lease to renew theirs.
        self._grace_until = self.server.clock.seconds() + self.lease
        await self._reap(self.node_name, force=True)
        await redis.set(_lease_key(self.node_name), self.boot, pexpire=self._lease_ms())
        for conn in list(self.server.nicks.values()):
            if conn.home is not None or not conn.registered:
                continue
            won = await self._claim(conn, conn.nick)
            if not won:
                conn.close("Nick collision with another server")
                continue
            await redis.hset(
                _users_key(self.node_name), conn.folded_nick, self._identity(conn)
            )
        # Listed once its users are: a node that loads us finds them all.
        await redis.hset(NODES, self.node_name, self.boot)
        await self._publish(ALL, {"e": "hello", "n": self.node_name})
        nodes = await redis.hgetall(NODES)
        # Known nodes not listed keep their users until their lease check.
        self._set_peers(set(nodes) | set(self.remote))
        for node in nodes:
            if node != self.node_name:
                await self._load(node)
        ran = [folded for folded, home in self.homes.items() if home == self.node_name]
        self.homes = dict(await redis.hgetall(HOMES))
        for data in (await redis.hgetall(CHANNELS)).values():
            apply_snapshot(self.server, json.loads(data))
        # Our reap above (or an empty Redis) dropped the homes we were: take
        # back those nobody took meanwhile, and publish them, so that a node
        # that loads the channels finds them and every copy is ours again.
        for folded in ran:
            if folded in self.server.channels and folded not in self.homes:
                home = await redis.eval(HOME, [HOMES], [folded, self.node_name])
                if home == self.node_name:
                    self._publish_channel(folded)
                else:
                    self.homes[folded] = str(home)

    def _sync(self) -> Deferred[None]:
        return Deferred.fromCoroutine(self._sync_steps())

    async def _load(self, node: str) -> None:
        """Load the users of *node* as remote sessions, replacing old ones."""
        users = await self.redis.hgetall(_users_key(node))
        sessions = self.remote.get(node, {})
        for folded in list(sessions):
            if folded not in users:
                self._drop(node, folded, SPLIT_REASON, "local")
        for identity in users.values():
            self._upsert(node, json.loads(identity), None)

    def _renew(self) -> None:
        """Every quarter lease: renew ours, reap nodes whose lease is gone.

        The lease is renewed while the bus reader is away too (the command
        connection may well work: a cut reader is no dead node), one renewal
        at a time so that none pile up while Redis is away."""
        if self._ever_linked and not self._renewing:
            self._renewing = True
            renewing = self.redis.set(
                _lease_key(self.node_name), self.boot, pexpire=self._lease_ms()
            )
            renewing.addErrback(
                lambda f: log.warn("Cluster: lease renewal failed: {e}", e=f.value)
            )
            renewing.addBoth(lambda _: setattr(self, "_renewing", False))
        if not self.linked:
            return
        listing = self.redis.hgetall(NODES)
        listing.addCallback(self._check_leases)
        listing.addErrback(lambda _: None)

    def _check_leases(self, nodes: dict[str, str]) -> None:
        if nodes.get(self.node_name) != self.boot:
            # Taken for dead (we were too slow to renew) and reaped: our
            # users are gone from the network until we publish them again.
            log.warn(
                "Cluster: node {name} was reaped; syncing again", name=self.node_name
            )
            self.linked = False
            self.link_up()
            return
        self._set_peers(set(nodes) | set(self.remote))
        for node in set(nodes) | set(self.remote):
            if node != self.node_name:
                checking = self.redis.exists(_lease_key(node))
                checking.addCallback(self._reap_if_dead, node)
                checking.addErrback(lambda _: None)

    def _reap_if_dead(self, alive: object, node: str) -> None:
        if alive in (1, True, "1") or self.server.clock.seconds() < self._grace_until:
            return
        log.info("Cluster: node {node} is gone (lease expired)", node=node)
        self._drop_node(node)
        reaping = self._reap(node, force=False)
        reaping.addCallback(
            lambda reaped: (
                self._publish(ALL, {"e": "gone", "n": node}) if reaped else None
            )
        )
        reaping.addErrback(lambda _: None)

    def _reap(self, node: str, force: bool) -> Deferred[Any]:
        return self.redis.eval(
            REAP,
            [NICKS, _users_key(node), _lease_key(node), NODES, HOMES, _inbox(node)],
            [node, "1" if force else "0"],
        )

    def _lease_ms(self) -> int:
        return int(self.lease * 1000)

    # -- Network: what the server tells us ----------------------------------

    def _owner(self, conn: ChatProtocol) -> str:
        return f"{self.node_name}/{self.boot}/{id(conn):x}"

    def _claim(self, conn: ChatProtocol, nick: str) -> Deferred[Any]:
        claiming = self.redis.eval(
            CLAIM, [NICKS], [casefold(nick), self._owner(conn), PREFIX + "node:"]
        )
        return claiming.addCallback(self._claimed, casefold(nick))

    def _claimed(self, won: object, folded: str) -> bool:
        """Whether the claim won; if so, a user of another node still here
        with that nick has left (the news is on its way): forget them."""
        if won not in (1, "1", True):
            return False
        holder = self.server.nicks.get(folded)
        if holder is not None and holder.node is not None:
            self._drop(holder.node, folded, "Quit", "none")
        return True

    def claim_nick(self, conn: ChatProtocol, nick: str) -> Deferred[bool]:
        if not self._ever_linked:
            # Starting: wait for the link rather than refuse (bounded).
            waiting: Deferred[None] = Deferred()
            self._first_link.addCallback(lambda _: waiting.callback(None))
            waiting.addTimeout(self.lease, self.server.clock)
            waiting.addErrback(lambda _: fail(NickUnavailableError(nick)))
            return waiting.addCallback(lambda _: self.claim_nick(conn, nick))
        if not self.linked:
            return fail(NickUnavailableError(nick))
        return self._claim(conn, nick).addErrback(
            lambda failure: fail(NickUnavailableError(str(failure.value)))
        )

    def release_nick(self, conn: ChatProtocol, nick: str) -> None:
        if self.linked:
            self.redis.eval(RELEASE, [NICKS], [casefold(nick), self._owner(conn)])

    def user_registered(self, conn: ChatProtocol) -> None:
        self._announce(conn, None)

    def user_changed(self, conn: ChatProtocol, old_nick: str | None = None) -> None:
        if conn.registered:
            self._announce(conn, old_nick)

    def user_quit(self, conn: ChatProtocol, reason: str) -> None:
        if not self.linked:
            return
        folded = conn.folded_nick
        self.redis.hdel(_users_key(self.node_name), folded)
        self._publish(
            ALL, {"e": "quit", "n": self.node_name, "nick": folded, "reason": reason}
        )

    def _announce(self, conn: ChatProtocol, old_nick: str | None) -> None:
        if not self.linked:
            return
        identity = identity_of(conn, self.node_name)
        users = _users_key(self.node_name)
        old = casefold(old_nick) if old_nick is not None else None
        if old is not None and old != conn.folded_nick:
            self.redis.hdel(users, old)
        self.redis.hset(users, conn.folded_nick, json.dumps(identity))
        event = {"e": "user", "n": self.node_name, "u": identity, "old": old}
        self._publish(ALL, event)

    def _identity(self, conn: ChatProtocol) -> str:
        return json.dumps(identity_of(conn, self.node_name))

    # -- events from the other nodes ---------------------------------------

    def _publish(self, stream: str, event: dict[str, Any]) -> Deferred[Any]:
        return self.publish_raw(stream, json.dumps(event))

    def forward(self, node: str, event: dict[str, Any]) -> None:
        """Send *event* (a line for, or a request about, one user) to *node*,
        through its link: in order with the relays for *node* in this turn."""
        data = event.get("d")
        if isinstance(data, bytes):
            event = {**event, "d": data.decode("utf-8", "surrogateescape")}
        self.server.router.write(self._link(node), json.dumps(event).encode() + b"\n")

    def _link(self, node: str) -> NodeLink:
        """The router's sink for *node*."""
        link = self._links.get(node)
        if link is None:
            link = self._links[node] = NodeLink(self, node)
        return link

    def events(self, entries: Sequence[tuple[str, str]]) -> None:
        """Bus entries arrived, each (stream, JSON objects a line); bad ones
        are logged and ignored.  What they make us write goes out in one
        turn."""
        router = self.server.router
        started = router.begin_turn()
        try:
            for stream, text in entries:
                for line in text.split("\n"):
                    try:
                        self._handle(stream, json.loads(line))
                    except Exception:
                        log.failure("Cluster: bad event on {stream}", stream=stream)
        finally:
            if started:
                router.end_turn()

    def _handle(self, channel: str, event: dict[str, Any]) -> None:
        kind = event.get("e")
        node = str(event.get("n") or "")
        if channel == ALL and node == self.node_name:
            return
        if kind == "user":
            self._upsert(node, event["u"], event.get("old"))
        elif kind == "quit":
            reason = str(event.get("reason") or "Quit")
            self._drop(node, str(event["nick"]), reason, "none")
        elif kind == "gone":
            self._drop_node(node)
        elif kind == "hello":
            self._set_peers(self.peers | {node})
            Deferred.fromCoroutine(self._load(node)).addErrback(self._sync_failed)
        elif kind == "out":
            conn = self._local(str(event["nick"]))
            if conn is not None:
                data = own_source(
                    str(event["d"]), str(event.get("s") or ""), self.server.name
                )
                conn.write(data.encode("utf-8", "surrogateescape"))
        elif kind == "close":
            conn = self._local(str(event["nick"]))
            if conn is not None:
                conn.close(str(event.get("reason") or "Disconnected"))
        elif kind == "relay":
            relay = json_relay(event["r"])
            conns = [c for c in map(self._local, event["to"]) if c is not None]
            if conns:
                self.server.router.publish(relay, Audience.to(*conns))
        elif kind == "chan":
            self._channel_event(node, event)
        elif kind == "chanserv":
            self.shared.event(event)
        elif kind == "cmd":
            Deferred.fromCoroutine(self._serve(node, event)).addErrback(
                lambda f: log.failure("Cluster: a routed command failed", f)
            )
        elif kind == "done":
            asked = self._asks.pop(int(event["id"]), None)
            if asked is not None:
                asked[1].callback(None)

    def _local(self, folded: str) -> ChatProtocol | None:
        conn = self.server.nicks.get(folded)
        if conn is None or conn.home is not None or conn.closing:
            return None
        return conn

    def _upsert(self, node: str, identity: dict[str, Any], old: str | None) -> None:
        """Create or update the remote session of a user of *node*."""
        sessions = self.remote.setdefault(node, {})
        nick = str(identity["nick"])
        folded = casefold(nick)
        session = sessions.pop(old, None) if old else None
        session = session or sessions.get(folded)
        server = self.server
        if session is None:
            holder = server.nicks.get(folded)
            if holder is not None and holder.home is None:
                # Both claimed it while Redis was split: Redis decides on
                # the next sync; meanwhile keep ours.
                return
            session = remote_session(server, node, identity, self.forward)
            server.set_nick(session, nick)
            for mode in str(identity.get("modes") or ""):
                session.modes.add(mode)
            server.mark_registered(session)
        else:
            update_session(session, identity)
            if session.nick != nick:
                server.set_nick(session, nick)
            wanted = set(str(identity.get("modes") or ""))
            for mode in wanted ^ session.modes:
                server.set_user_mode(session, mode, mode in wanted)
        sessions[folded] = session

    def _drop(self, node: str, folded: str, reason: str, announce: str) -> None:
        """Forget a user of *node*; *announce* as `ChatServer.connection_lost`."""
        session = self.remote.get(node, {}).pop(folded, None)
        if session is None:
            return
        if not session.closing:
            session.closing = True
            self.server.connection_lost(session, reason, announce)
        session.connectionLost()  # its timers, if it was closed here

    def _drop_node(self, node: str) -> None:
        """*node* is gone: each node tells its own users its users quit."""
        for folded in list(self.remote.get(node, {})):
            self._drop(node, folded, SPLIT_REASON, "local")
        self.remote.pop(node, None)
        self._set_peers(self.peers - {node})
        for folded, home in list(self.homes.items()):
            if home == node:
                del self.homes[folded]
        for ident, (home, waiter) in list(self._asks.items()):
            if home == node:
                del self._asks[ident]
                waiter.errback(NodeGoneError(node))

    def _tell_local(self, text: str) -> None:
        for conn in list(self.server.connections):
            if conn.registered and conn.home is None:
                conn.send(Message("NOTICE", (conn.nick, text), self.server.name))

    # -- channels: each has a home node that runs its commands ---------------

    def publish_raw(self, stream: str, text: str) -> Deferred[Any]:
        """Add *text* to *stream* (a node's inbox or ALL)."""
        assert self.bus is not None
        publishing = self.bus.publish(stream, text)
        publishing.addErrback(self._publish_failed)
        return publishing

    def _publish_failed(self, failure: Failure) -> None:
        if not failure.check(BacklogFullError):  # that is told once, in sends_lost
            log.warn("Cluster: publish failed: {error}", error=failure.value)

    def relay(self, relay: Relay, nicks: Mapping[str, Sequence[str]]) -> None:
        """A relay for users of other nodes: one event a node, in the turn."""
        data = relay_json(relay)
        for node, folded in nicks.items():
            event = {"e": "relay", "r": data, "to": list(folded)}
            self.server.router.write(
                self._link(node), json.dumps(event).encode() + b"\n"
            )

    def route(self, conn: ChatProtocol, message: Message) -> bool:
        """Run a command about channels at their homes, one part at a time;
        the client's next lines wait until every part is answered."""
        if not self.linked or conn.node is not None:
            return False
        parts = channel_parts(conn, message, self.server.config.limits.max_targets)
        unknown = self._unknown_nicks(message)
        if parts is None:
            if not unknown:
                return False
            parts = [(None, message)]
        later = Later(conn)
        running = Deferred.fromCoroutine(
            self._run_parts(conn, parts, later.response, unknown)
        )
        running.addErrback(
            lambda f: log.failure(
                "Cluster: routing {command} failed", f, command=message.command
            )
        )
        running.addBoth(lambda _: later.run(lambda: None))
        return True

    def _unknown_nicks(self, message: Message) -> list[str]:
        """The nicks a message is for that this node does not know (yet)."""
        if message.command not in ("PRIVMSG", "NOTICE", "TAGMSG"):
            return []
        if not message.params or "batch" in message.tags:
            return []
        server = self.server
        return [
            casefold(target)
            for target in message.params[0].split(",")[
                : server.config.limits.max_targets
            ]
            if target
            and target.lstrip("@+")[:1] not in CHANTYPES
            and casefold(target) not in server.nicks
            and target not in server.services
        ]

    async def _find_user(self, folded: str) -> None:
        """A user another node welcomed whose announcement has not reached
        us yet: load them from Redis now."""
        owner = await self.redis.hget(NICKS, folded)
        node = str(owner or "").split("/", 1)[0]
        if not node or node == self.node_name or folded in self.server.nicks:
            return
        identity = await self.redis.hget(_users_key(node), folded)
        if identity and folded not in self.server.nicks:
            self._upsert(node, json.loads(identity), None)

    async def _run_parts(
        self,
        conn: ChatProtocol,
        parts: list[tuple[str | None, Message]],
        besides: Response,
        unknown: Sequence[str] = (),
    ) -> None:
        for nick in unknown:
            await self._find_user(nick)
        for folded, part in parts:
            home = self.node_name
            if folded is not None:
                # A channel that exists here but lost its home (its node
                # died) gets a new one, as a channel being created does.
                create = part.command == "JOIN" or folded in self.server.channels
                home = await self._home(folded, create)
            if conn.closing:
                return
            if home == self.node_name:
                await self._run_here(conn, part, folded, besides)
            else:
                await self._ask(home, conn, part, folded)

    async def _home(self, folded: str, create: bool) -> str:
        """The node running *folded*'s commands; a JOIN may make it us."""
        home = self.homes.get(folded)
        if home is None:
            if create:
                home = await self.redis.eval(HOME, [HOMES], [folded, self.node_name])
            else:
                home = await self.redis.hget(HOMES, folded)
        if not home:
            return self.node_name  # no such channel: answered here
        self.homes[folded] = str(home)
        return str(home)

    async def _run_here(
        self,
        conn: ChatProtocol,
        part: Message,
        folded: str | None,
        besides: Response | None,
    ) -> None:
        router = self.server.router
        started = router.begin_turn()
        try:
            conn.dispatch(part, routed=True)
        finally:
            if started:
                router.end_turn()
        await conn.when_answered(besides)
        if folded is not None and part.command in STATE_COMMANDS:
            self._publish_channel(folded)

    async def _ask(
        self, home: str, conn: ChatProtocol, part: Message, folded: str | None
    ) -> None:
        ident = next(self._ask_ids)
        waiter: Deferred[None] = Deferred()
        self._asks[ident] = (home, waiter)
        self._publish(
            _inbox(home),
            {
                "e": "cmd",
                "n": self.node_name,
                "nick": conn.folded_nick,
                "id": ident,
                "line": part.to_line(),
            },
        )
        # A dead home fails it sooner (`_drop_node`); this is a last resort.
        waiter.addTimeout(self.lease * 2 + ASK_TIMEOUT, self.server.clock)
        try:
            await waiter
        except Exception:
            self._asks.pop(ident, None)
            if folded is not None:
                self.homes.pop(folded, None)
            conn.fail(
                part.command,
                "TEMPORARILY_UNAVAILABLE",
                "The server of this channel did not answer; try again",
            )

    async def _serve(self, node: str, event: Mapping[str, Any]) -> None:
        """Run a command routed here by *node* for one of its users."""
        try:
            session = self.remote.get(node, {}).get(str(event["nick"]))
            if session is not None and not session.closing:
                message = parse(str(event["line"]))
                parts = channel_parts(session, message, len(message.params) + 1)
                folded = parts[0][0] if parts else None
                await self._run_here(session, message, folded, None)
        finally:
            # Through a sink of its own, after everything the router holds
            # for this turn: the asking node reads on only once the replies
            # (on the session's own sink) are there.
            done = json.dumps({"e": "done", "id": event["id"]}).encode() + b"\n"
            self.server.router.write(NodeLink(self, node), done)

    def _publish_channel(self, folded: str) -> None:
        """After a change here, the channel's home: tell every node."""
        channel = self.server.channels.get(folded)
        if channel is None:
            self.homes.pop(folded, None)
            self.redis.hdel(CHANNELS, folded)
            self.redis.eval(RELEASE, [HOMES], [folded, self.node_name])
            self._publish(ALL, {"e": "chan", "n": self.node_name, "gone": folded})
            return
        data = snapshot(channel)
        self.homes[folded] = self.node_name
        self.redis.hset(HOMES, folded, self.node_name)
        self.redis.hset(CHANNELS, folded, json.dumps(data))
        self._publish(ALL, {"e": "chan", "n": self.node_name, "c": data})

    def _channel_event(self, node: str, event: Mapping[str, Any]) -> None:
        gone = event.get("gone")
        if gone is not None:
            drop_channel(self.server, str(gone))
            if self.homes.get(str(gone)) == node:
                del self.homes[str(gone)]
            return
        data = event["c"]
        apply_snapshot(self.server, data)
        self.homes[casefold(str(data["name"]))] = node
