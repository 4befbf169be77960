"""Cluster mode: several server processes (nodes) sharing one Redis form one
IRC network.

What is shared, and where (keys under ``chat:``):

- ``nodes`` (hash name -> boot id) lists the nodes; ``node:<name>`` is a
  node's *lease*, a key that expires unless the node renews it.  A node whose
  lease is gone is dead: any node then *reaps* it (a Lua script, so once),
  and every node drops that node's users with ``QUIT :*.net *.split``.
- ``nicks`` (hash folded nick -> ``<node>/<boot>``) makes a nick one user's
  network-wide: a node claims a nick with a Lua script that succeeds only
  when the nick is free or held by a dead node, before it answers ``NICK``
  (the client's later lines wait meanwhile).  Two clients racing for one
  nick on two nodes: Redis runs one script after the other, one wins.
- ``users:<node>`` (hash folded nick -> identity) holds each node's users,
  so a node that starts, or comes back after Redis was away, can load them.

Events travel on Redis Streams (`chat.cluster.bus`): ``all`` carries user
events (registered, changed, quit), channel snapshots and node hellos;
``to:<node>``, a node's inbox, carries relays and lines for that node's
users, routed channel commands and their "done", and requests to act on
users (KILL, GHOST).  A node adds to them with ``XADD ... MAXLEN ~
stream-length`` (one entry per event, or per other node and turn for
relays and lines to its users, in the order they were written: never one
per recipient) and reads its inbox and ``all`` on a
connection of its own with ``XREAD BLOCK``, from the last id it processed.
So a reader whose connection drops (a reconnect, Redis cutting a slow
client, a short network cut) goes on where it stopped when it is back:
nothing lost, and since ids only grow, nothing applied twice.  A first start
reads from the streams' ends: what came before is in the state it loads.  A
node applies what it missed before it syncs.  A node away so long that more
than ``stream-length`` entries came (or Redis lost the stream) sees that a
stream's oldest entry is newer than its last one, and re-syncs as after a
reap, from the streams' ends, telling its users that messages to them may
have been lost; routed commands whose "done" was lost fail at their
timeout.  A reaped node's inbox is deleted.  A user on another node is
a *remote session* here: a `ChatProtocol` whose transport forwards what it
is written to that user's node (`chat.cluster.remote`), so WHOIS, ISON,
USERHOST, MONITOR, LUSERS, PRIVMSG, NOTICE, TAGMSG and KILL treat it as any
other user.

When Redis goes away (or the bus reader's connection drops) nothing stops:
local users are told, keep chatting with each other, and new nicks are
refused with 437 (uniqueness could not be checked); the lease is still
renewed when the command connection works, so a short cut splits nobody.
Once the reader is back each node re-claims its users' nicks, publishes
them again and reloads the others', so there are no ghosts and no
duplicates, and reads the events it missed.  Redis may come back empty
(no persistence): a node lists itself in ``nodes`` only once its users are
written, reaps no node for a lease after it synced (the others' leases are
gone until they renew them), and takes back and publishes the channels it
was the home of.  What a node sends while its
command connection is down waits for it, and an ``XADD`` in flight when it
drops is sent again: each entry carries its bus's sender id and a sequence
number, the bus keeps each event until Redis answers its ``XADD`` (at most
`chat.cluster.bus.BACKLOG`), re-sends the unanswered ones in order on the
new connection, and a reader skips an entry whose number is not above the
last it applied from that sender on that stream, so one Redis ran but whose
answer was lost is applied once.  Chosen over ``MULTI``/``EXEC`` or an
explicit ``XADD`` id: it keeps one ``XADD`` per event, pipelined, with
Redis's own ids, and makes each sender's order explicit.  Past the bound a
publish fails (logged once), the node's users are told, and it re-syncs.
Not covered: a node that dies with events unanswered loses them (its
users are split anyway), and an event re-sent could be skipped as old
only if a connection the client gave up on (a reply timeout) still
delivered a later ``XADD`` to Redis before the re-sent one.

Network-wide limits and records (`chat.cluster.shared.RedisState`, the
node's `chat.network.SharedState`):

- ``clients`` (hash ``<node>/<boot>`` -> open connections): a Lua script
  admits a connection only while the nodes with a live lease hold fewer
  than ``max-clients`` (a dead node's field is dropped once its lease is
  gone); each node rewrites its own count every quarter lease.  While Redis
  is away a node admits by its own count alone.
- ``logins:account:<folded>`` and ``logins:address:<address>``: sorted sets
  of failure times, the single server's sliding window, so a brute-force
  allowance does not multiply by the node count.  While Redis is away
  logins are refused with a temporary error.
- ``registrations:<address>``: a sorted set of the times of the accounts
  registered from that address (3 an hour), checked and counted by one Lua
  script; while Redis is away registrations are refused with a temporary
  error.
- ``whowas:<folded nick>``: a list (LPUSH, LTRIM to ``whowas-history``,
  EXPIRE a week); while Redis is away a node answers from its memory.
- ChanServ: a node that registers, changes or drops a channel in the shared
  database publishes ``chanserv`` on ``all``; the others read that channel
  again, and read them all again after their link to Redis comes back.
- NickServ's guest renames claim the guest nick like ``NICK``; while Redis
  is away the rename waits another grace period.

Not shared yet: history and accounts live in the database each node is
given (share them with PostgreSQL, `chat.storage`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from chat.config import ConfigError


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """Where the cluster's Redis is."""

    host: str
    port: int
    db: int


def parse_redis_url(url: str) -> RedisAddress:
    """``redis://host:port/db`` (port 6379 and db 0 by default)."""
    try:
        parts = urlsplit(url)
        port = parts.port or 6379
    except ValueError as error:
        raise ConfigError(f"cluster: not a Redis URL: {url!r} ({error})") from None
    if parts.scheme != "redis" or not parts.hostname:
        raise ConfigError(f"cluster: not a redis://host:port/db URL: {url!r}")
    path = parts.path.strip("/") or "0"
    if not path.isdigit():
        raise ConfigError(f"cluster: the Redis database must be a number: {url!r}")
    return RedisAddress(parts.hostname, port, int(path))
