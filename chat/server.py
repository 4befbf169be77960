"""ChatServer: the factory of connections and the state they share."""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import cast

from twisted.internet.interfaces import IAddress, IReactorTime, ISSLTransport
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from chat import casemap, events
from chat.accounts import Accounts
from chat.casemap import casefold
from chat.channel import ACCOUNT_EXTBAN, EXTBAN_TYPES, Channel
from chat.config import ServerConfig
from chat.events import EventLog
from chat.history import QUERY_LIMIT, HistoryStore
from chat.history.memory import MemoryHistory
from chat.history.record import remember_events
from chat.limits import ConnectionLimiter, Refusal, address_key, new_stats
from chat.message import Message
from chat.monitor import MONITOR_LIMIT, Monitors
from chat.network import LocalState, Network, SharedState, SingleServer
from chat.protocol import ChatProtocol
from chat.readmarkers import ReadMarkers
from chat.relay import Relay
from chat.router import Audience, Router
from chat.services import Services
from chat.storage import log_store_failure
from chat.storage.sqlite import SQLiteStore
from chat.tls import tls_version
from chat.version import DISTRIBUTION, __version__
from chat.whowas import WhowasEntry

#: What VERSION answers: the distribution and its version (`chat.version`).
VERSION = f"{DISTRIBUTION}-{__version__}"


class ChatServer(Factory):
    """Users by folded nick, channels by folded name, and the config."""

    protocol = ChatProtocol
    log = Logger()
    #: No "Starting factory <...>" lines: `chat.events` logs what matters.
    noisy = False

    def __init__(
        self,
        config: ServerConfig,
        clock: IReactorTime | None = None,
        motd: list[str] | None = None,
        accounts: Accounts | None = None,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = cast(IReactorTime, reactor)
        self.config = config
        self.clock: IReactorTime = clock
        self.motd = motd
        self.created = clock.seconds()
        self.connections: set[ChatProtocol] = set()
        self.nicks: dict[str, ChatProtocol] = {}
        self.registered_count = 0
        #: Of those, the users of this node's own connections (in a cluster
        #: the others are remote sessions, which are not in `connections`).
        self.local_registered = 0
        #: The most `local_registered` has been (LUSERS 265).
        self.max_local = 0
        #: How many servers the network has: a cluster's live nodes (LUSERS).
        self.server_count = 1
        #: Registered users by user mode (``o``, ``i``...): see `set_user_mode`.
        self.mode_counts: Counter[str] = Counter()
        self.max_users = 0
        self.channels: dict[str, Channel] = {}
        self.whowas: deque[WhowasEntry] = deque(maxlen=config.limits.whowas_history)
        #: Counters for the metrics endpoint: `chat.limits.STAT_NAMES`.
        self.stats: dict[str, int] = new_stats()
        self.limiter = ConnectionLimiter()
        #: The operator's log (`chat.events`).
        self.events = EventLog(clock)
        #: Message history; `chat.service` puts an SQLite store here.
        self.history: HistoryStore = MemoryHistory(clock)
        self.monitors = Monitors()
        #: draft/read-marker: how far each account (or guest) has read.
        self.read_markers = ReadMarkers(self._save_read_marker)
        #: Accounts and registered channels; `chat.service` gives it a
        #: store in the data directory.
        self.accounts = accounts or Accounts(SQLiteStore(":memory:"), clock)
        #: NickServ and ChanServ.
        self.services = Services(self)
        #: Every delivery and every write goes through the router.
        self.router = Router(self)
        #: The other servers of the network (cluster mode), or none.
        self.network: Network = SingleServer()
        #: The client limit, WHOWAS and ChanServ's list, network-wide.
        self.shared: SharedState = LocalState(self)
        #: What WHOIS says a local user is on: this node's name in a cluster.
        self.node_name = config.server_name

    @property
    def name(self) -> str:
        return self.config.server_name

    @property
    def version(self) -> str:
        return VERSION

    @property
    def created_text(self) -> str:
        """When the server started, for RPL_CREATED."""
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.created))

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        """A `ChatProtocol`, or a `Refusal` when a connection limit is reached."""
        host = getattr(addr, "host", "") or "unknown"
        reason = self.limiter.refusal(host, self.config.limits, self.clock.seconds())
        if reason is not None:
            self.stats["connections_refused"] += 1
            events.refused(self, host, address_key(host), reason)
            return Refusal(reason, self.clock, self.config.timeouts.close_grace)
        conn = ChatProtocol(self)
        conn.factory = self
        self.limiter.add(conn, host)
        return conn

    @staticmethod
    def is_secure(transport: object) -> bool:
        """Whether the connection runs over TLS."""
        return ISSLTransport.providedBy(transport)

    # -- connections ----------------------------------------------------

    def connection_made(self, conn: ChatProtocol) -> None:
        self.connections.add(conn)
        if conn.node is None:
            self.shared.admit(conn)

    def connection_lost(
        self, conn: ChatProtocol, reason: str, announce: str | None = None
    ) -> None:
        """Forget *conn*: tell its channels' members once each, then clean up.

        *announce* says who sees the QUIT: ``all`` (the default for a local
        user), ``local`` (only users here: a node that died, each node tells
        its own) or ``none`` (a remote session: its own node tells).
        """
        if announce is None:
            announce = "all" if conn.node is None else "none"
        if conn.node is None:
            events.disconnected(conn, reason)
        self.connections.discard(conn)
        self.limiter.remove(conn)
        if conn.node is None:
            self.shared.left(conn)
        if conn.registered:
            self.registered_count -= 1
            if conn.node is None:
                self.local_registered -= 1
            self.mode_counts.subtract(conn.modes)
            self.remember(conn)
            if conn.home is None:
                self.network.user_quit(conn, reason)
            quit_relay = self.relay(Message("QUIT", (reason,), conn.hostmask), conn)
            if announce != "none":
                self.router.publish(
                    quit_relay, Audience.peers(conn), local_only=announce == "local"
                )
            remember_events(self, quit_relay, conn.channels.values())
            for channel in list(conn.channels.values()):
                self.leave_channel(conn, channel)
            self.monitors.offline(conn.nick)
        self.monitors.clear(conn)
        self.services.forget(conn)
        if self.nicks.get(conn.folded_nick) is conn:
            del self.nicks[conn.folded_nick]
            if conn.home is None:
                self.network.release_nick(conn, conn.nick)

    def shutdown(self, reason: str) -> None:
        """Send ``ERROR`` to every client and close every connection."""
        for conn in list(self.connections):
            conn.close(reason)

    # -- users ----------------------------------------------------------

    def find_user(self, nick: str) -> ChatProtocol | None:
        """The registered user with *nick*, if any."""
        conn = self.nicks.get(casefold(nick))
        if conn is not None and conn.registered:
            return conn
        return None

    def nick_in_use(self, nick: str, by: ChatProtocol) -> bool:
        owner = self.nicks.get(casefold(nick))
        return (owner is not None and owner is not by) or nick in self.services

    def set_nick(self, conn: ChatProtocol, nick: str) -> None:
        """Give *conn* the nick *nick* in the nick table."""
        if self.nicks.get(conn.folded_nick) is conn:
            del self.nicks[conn.folded_nick]
            if conn.home is None and casefold(nick) != conn.folded_nick:
                self.network.release_nick(conn, conn.nick)
        old = conn.nick
        conn.nick = nick
        self.nicks[casefold(nick)] = conn
        if conn.registered:
            if casefold(old) != casefold(nick):
                # A change of case only is the same nick to MONITOR: no 731/730.
                self.monitors.offline(old)
                self.monitors.online(conn)
            if conn.home is None:
                self.network.user_changed(conn, old)

    def mark_registered(self, conn: ChatProtocol) -> None:
        events.registered(conn, tls_version(conn.transport))
        conn.registered = True
        self.registered_count += 1
        if conn.node is None:
            self.local_registered += 1
            self.max_local = max(self.max_local, self.local_registered)
        self.mode_counts.update(conn.modes)
        self.max_users = max(self.max_users, self.registered_count)
        self.monitors.online(conn)
        if conn.home is None:
            self.network.user_registered(conn)

    def peers_of(self, conn: ChatProtocol) -> list[ChatProtocol]:
        """Everyone sharing a channel with *conn*, without *conn* itself."""
        return list(self.router.recipients(Audience.peers(conn)))

    def load_read_markers(self, account: str) -> None:
        """Add the stored read markers of *account* (just logged in)."""
        loaded = self.accounts.store.read_markers(account)
        loaded.addCallback(lambda markers: self.read_markers.load(account, markers))
        loaded.addErrback(
            lambda failure: log_store_failure(
                self.log, "Could not read read markers", failure
            )
        )

    def _save_read_marker(self, account: str, target: str, when: float) -> None:
        saved = self.accounts.store.set_read_marker(account, target, when)
        saved.addErrback(
            lambda failure: log_store_failure(
                self.log, "Could not keep a read marker", failure
            )
        )

    def observers_of(
        self, conn: ChatProtocol, cap: str, include_self: bool = False
    ) -> Audience:
        """Who is told of *conn*'s AWAY, ACCOUNT, CHGHOST and SETNAME changes
        under *cap*: channel peers, and (extended-monitor) the users
        monitoring *conn*, that negotiated *cap*; *conn* too if asked."""
        watchers = tuple(
            watcher
            for watcher in self.monitors.watchers_of(conn)
            if "extended-monitor" in watcher.caps and watcher is not conn
        )
        users = (*watchers, conn) if include_self else watchers
        skip = None if include_self else conn
        return Audience(tuple(conn.channels.values()), users, "", skip, cap)

    def remember(self, conn: ChatProtocol) -> None:
        """Add *conn*'s current identity to the WHOWAS history (network-wide
        for a local user)."""
        entry = WhowasEntry(
            conn.nick,
            conn.username,
            conn.host,
            conn.realname,
            conn.home or self.node_name,
            int(self.clock.seconds()),
        )
        self.whowas.appendleft(entry)
        if conn.node is None:
            self.shared.remember(entry)

    def set_user_mode(self, conn: ChatProtocol, mode: str, on: bool) -> bool:
        """Set or unset user mode *mode* of *conn*; return whether it changed.

        Counts of registered users by mode are kept up to date here, so that
        LUSERS never has to look at every user.
        """
        if (mode in conn.modes) == on:
            return False
        if on:
            conn.modes.add(mode)
        else:
            conn.modes.discard(mode)
        if conn.registered:
            self.mode_counts[mode] += 1 if on else -1
            if conn.home is None:
                self.network.user_changed(conn)
        return True

    def operators_online(self) -> int:
        return self.mode_counts["o"]

    def invisible_count(self) -> int:
        return self.mode_counts["i"]

    def unregistered_count(self) -> int:
        """Connections here that have not completed registration yet."""
        return len(self.connections) - self.local_registered

    # -- channels -------------------------------------------------------

    def find_channel(self, name: str) -> Channel | None:
        return self.channels.get(casefold(name))

    def create_channel(self, name: str) -> Channel:
        channel = Channel(name, int(self.clock.seconds()))
        self.channels[casefold(name)] = channel
        self.services.channel_created(channel)
        return channel

    def rename_channel(self, channel: Channel, name: str) -> None:
        """Give *channel* the new *name* (draft/channel-rename), re-keyed
        everywhere it is looked up by folded name."""
        old = channel.folded
        del self.channels[old]
        channel.name = name
        self.channels[channel.folded] = channel
        for member in channel.members:
            member.channels.pop(old, None)
            member.channels[channel.folded] = channel

    def leave_channel(self, conn: ChatProtocol, channel: Channel) -> None:
        """Take *conn* out of *channel*; drop the channel once empty."""
        channel.remove(conn)
        conn.channels.pop(channel.folded, None)
        if not channel.members:
            self.channels.pop(channel.folded, None)

    # -- output ---------------------------------------------------------

    def relay(
        self, message: Message, sender: ChatProtocol | None = None, **tags: str
    ) -> Relay:
        """Wrap *message* for delivery to several recipients, stamped now.

        A message from user *sender* carries their account and bot flag as
        tags; *tags* are client-only tags to pass on.
        """
        self.stats["messages_relayed"] += 1
        if sender is None:
            return Relay(message, self.clock.seconds(), client_tags=tags or None)
        return Relay(
            message,
            self.clock.seconds(),
            client_tags=tags or None,
            account=sender.account,
            bot="B" in sender.modes,
        )

    def isupport(self) -> list[str]:
        """The ISUPPORT (005) tokens of this server."""
        limits = self.config.limits
        return [
            f"ACCOUNTEXTBAN={ACCOUNT_EXTBAN}",
            f"AWAYLEN={limits.away_length}",
            "BOT=B",
            f"CASEMAPPING={casemap.CASEMAPPING}",
            f"CHANLIMIT={casemap.CHANTYPES}:{limits.max_channels}",
            "CHANMODES=beI,k,l,Cimnst",
            f"CHANNELLEN={limits.channel_length}",
            f"CHANTYPES={casemap.CHANTYPES}",
            f"CHATHISTORY={QUERY_LIMIT}",
            "ELIST=CMNTU",
            "EXCEPTS=e",
            f"EXTBAN=,{EXTBAN_TYPES}",
            "HOSTLEN=64",
            "INVEX=I",
            f"KICKLEN={limits.kick_length}",
            f"MAXLIST=b:{limits.max_list_entries},e:{limits.max_list_entries},"
            f"I:{limits.max_list_entries}",
            f"MAXTARGETS={limits.max_targets}",
            f"MODES={limits.modes_per_command}",
            f"MONITOR={MONITOR_LIMIT}",
            "MSGREFTYPES=msgid,timestamp",
            f"NETWORK={self.config.network}",
            f"NICKLEN={limits.nick_length}",
            "PREFIX=(ov)@+",
            "STATUSMSG=@+",
            f"TARGMAX=JOIN:,KICK:{limits.max_targets},LIST:,NAMES:,"
            f"NOTICE:{limits.max_targets},PART:,PRIVMSG:{limits.max_targets},WHOIS:1",
            f"TOPICLEN={limits.topic_length}",
            "USERLEN=10",
            "UTF8ONLY",
            "WHOX",
        ]
