"""Network-wide counters of a cluster: clients (``max-clients``), failed
logins (the per-account and per-address throttles) and account
registrations per address.

*Clients*: ``chat:clients`` is a hash ``<node>/<boot>`` -> that node run's
open client connections.  A node admits a new connection with one Lua
script that sums the fields of the nodes whose lease holds this boot
(deleting the others: a dead node stops counting once its lease is gone)
and adds one to its own field only if the sum is below ``max-clients``.
Redis runs one script at a time, so admissions on all nodes are one
sequence and the limit is exact; each node also writes its true count every
quarter lease, which repairs the hash after Redis lost its data.  While
Redis is away a node admits by its own count alone (at most ``max-clients``
each): the network may then hold up to N times the limit.

*Failed logins*: ``chat:logins:account:<folded>`` and
``chat:logins:address:<address>`` are sorted sets of failure times, the
same sliding window as the single server's `chat.accounts.Throttle`
(failures older than the window do not count, at most the allowance kept),
expiring a window after the last failure.  Times are each node's clock:
keep the machines' clocks in step (NTP); a skew of s seconds moves a
failure's end by s.  A check and a count are one Lua
script each.  While Redis is away logins are refused
(`ThrottleUnavailableError`, a temporary error): an allowance that cannot
be counted network-wide is not given.

*Registrations*: ``chat:registrations:<address>`` is a sorted set of the
times of the accounts registered from that address, the single server's
window (`chat.accounts.Accounts.registrations`: 3 an hour), expiring a
window after the last one.  The check and the count are one Lua script, so
two nodes registering for one address at once cannot both take its last
allowance.  While Redis is away registrations are refused with the same
temporary error.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat import events
from chat.limits import address_key
from chat.storage import StoreUnavailableError

if TYPE_CHECKING:
    from chat.cluster.node import ClusterNode
    from chat.protocol import ChatProtocol

#: The clients hash and the prefix of node leases (`chat.cluster`).
CLIENTS = "chat:clients"
LEASE_PREFIX = "chat:node:"
LOGINS_PREFIX = "chat:logins:"
REGISTRATIONS_PREFIX = "chat:registrations:"

#: Admit one client if the live nodes' clients are below ARGV[2].
ADMIT = """
local total = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
    local field = fields[i]
    local node, boot = string.match(field, '^(.*)/([^/]*)$')
    if field == ARGV[1] or (node and redis.call('GET', ARGV[3] .. node) == boot) then
        total = total + tonumber(fields[i + 1])
    else
        redis.call('HDEL', KEYS[1], field)
    end
end
if total >= tonumber(ARGV[2]) then
    return 0
end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return 1
"""
#: 1 if any key (KEYS) has its allowance (ARGV[2 + i]) of failures newer
#: than ARGV[1] - ARGV[2] (now - window).
BLOCKED = """
local oldest = tonumber(ARGV[1]) - tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
    redis.call('ZREMRANGEBYSCORE', key, '-inf', oldest)
    if redis.call('ZCARD', key) >= tonumber(ARGV[2 + i]) then
        return 1
    end
end
return 0
"""
#: Count a failure (member ARGV[2] at time ARGV[1]) on every key, keeping
#: at most its allowance (ARGV[3 + i]); expire after the window (ARGV[3], ms).
FAILED = """
for i, key in ipairs(KEYS) do
    redis.call('ZADD', key, ARGV[1], ARGV[2])
    redis.call('ZREMRANGEBYRANK', key, 0, -(tonumber(ARGV[3 + i]) + 1))
    redis.call('PEXPIRE', key, ARGV[3])
end
return 1
"""

#: Count a registration (member ARGV[4] at time ARGV[1]) unless KEYS[1] has
#: its allowance (ARGV[3]) newer than ARGV[1] - ARGV[2]; expire after the
#: window (ARGV[5], ms).  1 if counted.
REGISTER = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

log = Logger()


class ThrottleUnavailableError(StoreUnavailableError):
    """The network's login counters cannot be reached: try again later."""


class ClientCounter:
    """``max-clients`` over the whole cluster (see the module docstring)."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        self.field = f"{node.node_name}/{node.boot}"
        #: Local connections admitted (counted in Redis while linked).
        self._counted: set[ChatProtocol] = set()
        #: Local connections waiting for Redis to admit them.
        self._waiting: set[ChatProtocol] = set()

    def admit(self, conn: ChatProtocol) -> None:
        """Let *conn* in if the network has room; its input waits meanwhile."""
        if not self.node.linked:
            self._counted.add(conn)  # this node's own limit only
            return
        conn.hold("admission")
        self._waiting.add(conn)
        limit = self.node.server.config.limits.max_clients
        admitting = self.node.redis.eval(
            ADMIT, [CLIENTS], [self.field, str(limit), LEASE_PREFIX]
        )
        admitting.addCallbacks(
            lambda admitted: self._answered(conn, admitted in (1, "1", True)),
            lambda failure: self._unanswered(conn, failure),
        )

    def _answered(self, conn: ChatProtocol, admitted: bool) -> None:
        self._waiting.discard(conn)
        if conn.closing:
            if admitted:
                self._decrement()
            return
        if admitted:
            self._counted.add(conn)
            conn.release("admission")
            return
        server = self.node.server
        server.stats["connections_refused"] += 1
        reason = "Server is full"
        events.refused(server, conn.address, address_key(conn.address), reason)
        # A TLS goodbye needs the peer's answer, so the transport reads again;
        # the lines that wait are never handled (the connection is closing).
        conn.transport.resumeProducing()  # type: ignore[attr-defined]
        conn.close(reason)

    def _unanswered(self, conn: ChatProtocol, failure: Failure) -> None:
        log.warn(
            "Cluster: admission check failed, admitting by local count: {error}",
            error=failure.value,
        )
        self._waiting.discard(conn)
        if not conn.closing:
            self._counted.add(conn)
            conn.release("admission")

    def left(self, conn: ChatProtocol) -> None:
        """*conn* is gone (an answer still on its way decrements itself)."""
        self._waiting.discard(conn)
        if conn in self._counted:
            self._counted.discard(conn)
            self._decrement()

    def _decrement(self) -> None:
        if self.node.linked:
            self._write(self.node.redis.hincrby(CLIENTS, self.field, -1))

    def refresh(self) -> None:
        """Write this node's true count (answers on their way count: a
        transient over-count at most)."""
        count = len(self._counted) + len(self._waiting)
        self._write(self.node.redis.hset(CLIENTS, self.field, count))

    def forget(self) -> None:
        """This node stops: its clients no longer count."""
        if self.node.linked:
            self._write(self.node.redis.hdel(CLIENTS, self.field))

    @staticmethod
    def _write(writing: Deferred[Any]) -> None:
        writing.addErrback(
            lambda f: log.warn("Cluster: client count not written: {e}", e=f.value)
        )


class SharedLogins:
    """`chat.accounts.LoginLimits` of the whole cluster (module docstring):
    *max_failures* per account, twice that per address, per *window* s."""

    def __init__(self, node: ClusterNode, max_failures: int, window: float) -> None:
        self.node = node
        self.max_failures = max_failures
        self.window = window
        self._ids = itertools.count(1)

    @staticmethod
    def _keys(account: str, address: str) -> list[str]:
        return [
            f"{LOGINS_PREFIX}account:{account}",
            f"{LOGINS_PREFIX}address:{address}",
        ]

    def _allowances(self) -> list[str]:
        return [str(self.max_failures), str(2 * self.max_failures)]

    def blocked(self, account: str, address: str) -> Deferred[bool]:
        if not self.node.linked:
            return fail(ThrottleUnavailableError("the network is unreachable"))
        now = self.node.server.clock.seconds()
        checking = self.node.redis.eval(
            BLOCKED,
            self._keys(account, address),
            [repr(now), repr(self.window), *self._allowances()],
        )

        def unavailable(failure: Failure) -> Failure:
            return Failure(ThrottleUnavailableError(str(failure.value)))

        return checking.addCallbacks(lambda found: found in (1, "1", True), unavailable)

    def record(self, account: str, address: str, success: bool) -> None:
        if not self.node.linked:
            return  # logins are refused meanwhile (`blocked`)
        keys = self._keys(account, address)
        if success:
            counting = self.node.redis.delete(keys[0])
        else:
            now = self.node.server.clock.seconds()
            member = f"{self.node.node_name}/{self.node.boot}/{next(self._ids)}"
            window_ms = str(max(1, int(self.window * 1000)))
            counting = self.node.redis.eval(
                FAILED, keys, [repr(now), member, window_ms, *self._allowances()]
            )
        counting.addErrback(
            lambda f: log.warn("Cluster: login not counted: {e}", e=f.value)
        )


class SharedRegistrations:
    """Account registrations per address over the whole cluster (module
    docstring), with the server's allowance and window."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        self._ids = itertools.count(1)

    def may_register(self, address: str) -> Deferred[bool]:
        """Whether *address* may register now, counting one if so."""
        if not self.node.linked:
            return fail(ThrottleUnavailableError("the network is unreachable"))
        server = self.node.server
        limit = server.accounts.registrations
        now = server.clock.seconds()
        member = f"{self.node.node_name}/{self.node.boot}/{next(self._ids)}"
        counting = self.node.redis.eval(
            REGISTER,
            [f"{REGISTRATIONS_PREFIX}{address}"],
            [
                repr(now),
                repr(limit.window),
                str(limit.max_failures),
                member,
                str(max(1, int(limit.window * 1000))),
            ],
        )

        def unavailable(failure: Failure) -> Failure:
            return Failure(ThrottleUnavailableError(str(failure.value)))

        return counting.addCallbacks(
            lambda counted: counted in (1, "1", True), unavailable
        )
