"""WHOWAS of a whole cluster.

``chat:whowas:<folded nick>`` is a Redis list of JSON entries, newest
first: a node pushes an entry when one of its users leaves or changes nick
(LPUSH, LTRIM to ``limits.whowas_history``, EXPIRE after `WHOWAS_TTL`, one
Lua script), and WHOWAS on any node reads the list.  While Redis is away a
node answers from its own memory (`ChatServer.whowas`: its own users, and
the users of other nodes it saw leave), and what its users leave meanwhile
is not shared.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat.casemap import casefold
from chat.whowas import WhowasEntry, matching

if TYPE_CHECKING:
    from chat.cluster.node import ClusterNode

WHOWAS_PREFIX = "chat:whowas:"
#: Seconds a nick's list is kept after its newest entry (a week).
WHOWAS_TTL = 7 * 24 * 3600

#: Push ARGV[1] on KEYS[1], keep ARGV[2] entries, expire in ARGV[3] s.
REMEMBER = """
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

log = Logger()


class SharedWhowas:
    """WHOWAS entries in Redis, by folded nick (module docstring)."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        self.server = node.server

    @property
    def length(self) -> int:
        return self.server.config.limits.whowas_history

    def remember(self, entry: WhowasEntry) -> None:
        """Share *entry* (a local user's) with every node."""
        if not self.node.linked or self.length <= 0:
            return
        pushing = self.node.redis.eval(
            REMEMBER,
            [WHOWAS_PREFIX + casefold(entry.nick)],
            [json.dumps(entry.to_json()), str(self.length), str(WHOWAS_TTL)],
        )
        pushing.addErrback(
            lambda f: log.warn("Cluster: WHOWAS entry not shared: {e}", e=f.value)
        )

    def lookup(self, nick: str, limit: int | None) -> Deferred[list[WhowasEntry]]:
        """The entries of *nick* on the network, newest first (this node's
        own when Redis cannot be asked)."""
        if not self.node.linked or self.length <= 0:
            return succeed(self._local(nick, limit))
        count = min(limit or self.length, self.length)
        reading = self.node.redis.lrange(WHOWAS_PREFIX + casefold(nick), 0, count - 1)

        def entries(found: list[str] | None) -> list[WhowasEntry]:
            result: list[WhowasEntry] = []
            for data in found or ():
                try:
                    result.append(WhowasEntry.from_json(json.loads(data)))
                except (ValueError, KeyError, TypeError):
                    log.warn("Cluster: ignoring a malformed WHOWAS entry")
            return result

        def local(failure: Failure) -> list[WhowasEntry]:
            log.warn("Cluster: WHOWAS from memory: {e}", e=failure.value)
            return self._local(nick, limit)

        return reading.addCallbacks(entries, local)

    def _local(self, nick: str, limit: int | None) -> list[WhowasEntry]:
        return matching(self.server.whowas, nick, limit)
