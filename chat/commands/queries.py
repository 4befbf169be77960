"""User queries: WHO (with WHOX), WHOIS, WHOWAS, AWAY, ISON, USERHOST, HELP.

Visibility rules, following modern.ircdocs.horse:

- an invisible user (``+i``) shows up in WHO only to users sharing a channel
  with them, to operators, and when asked for by exact nick;
- a secret channel (``+s``) shows up in WHO, WHOIS and the WHO channel field
  only to its members;
- the real address (WHOIS 338/378, WHOX ``i``) is shown only to operators
  and to the user themselves.

A WHO mask that is not a channel or an exact nick (``WHO *``, ``WHO 0``,
``WHO *.example.org``) answers at most `WHO_MAX_RESULTS` users, then
``416 ERR_TOOMANYMATCHES`` and the usual ``315``: a client cannot make the
server walk and send the whole user table in one command.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from chat import numerics
from chat.casemap import casefold, is_channel_name, mask_to_regex
from chat.commands import COMMANDS, command
from chat.commands.metadata import send_whois_metadata
from chat.commands.operators import is_operator
from chat.message import Message
from chat.router import Audience
from chat.services import Later

if TYPE_CHECKING:
    from chat.channel import Channel
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer
    from chat.whowas import WhowasEntry

#: The most users one wildcard WHO answers with (see the module docstring).
WHO_MAX_RESULTS = 200
#: WHOX fields we answer, in the order RPL_WHOSPCRPL sends them.
WHOX_FIELDS = "tcuihsnfdlaor"
#: Room for the channel list of one RPL_WHOISCHANNELS line.
WHOIS_CHANNELS_BUDGET = 400
#: The IP placeholder WHOX uses when the address is not disclosed.
HIDDEN_IP = "255.255.255.255"


# -- shared helpers ------------------------------------------------------


def _param(value: str) -> str:
    """Make *value* safe as a middle parameter (``::1`` -> ``0::1``)."""
    return "0" + value if value.startswith(":") else value


def shares_channel(a: ChatProtocol, b: ChatProtocol) -> bool:
    """Whether *a* and *b* are members of a common channel."""
    small, large = (a, b) if len(a.channels) <= len(b.channels) else (b, a)
    return any(name in large.channels for name in small.channels)


def _sees_address(asker: ChatProtocol, user: ChatProtocol) -> bool:
    return asker is user or is_operator(asker)


def _channel_visible(asker: ChatProtocol, channel: Channel) -> bool:
    return "s" not in channel.flags or asker in channel.members


def _user_visible(asker: ChatProtocol, user: ChatProtocol) -> bool:
    return (
        "i" not in user.modes
        or asker is user
        or is_operator(asker)
        or shares_channel(asker, user)
    )


def _status_flags(
    asker: ChatProtocol, user: ChatProtocol, channel: Channel | None
) -> str:
    """WHO flags: H or G, ``*`` for operators, then the channel prefix."""
    flags = "G" if user.away is not None else "H"
    if is_operator(user):
        flags += "*"
    if channel is not None:
        flags += channel.prefix(user, multi="multi-prefix" in asker.caps)
    if "B" in user.modes:
        flags += "B"
    return flags


def _some_channel(asker: ChatProtocol, user: ChatProtocol) -> Channel | None:
    """A channel of *user* that *asker* may see: a shared one first."""
    shown: Channel | None = None
    for channel in user.channels.values():
        if asker in channel.members:
            return channel
        if shown is None and "i" not in user.modes and "s" not in channel.flags:
            shown = channel
    return shown


# -- WHO -----------------------------------------------------------------


def _parse_who_options(options: str) -> tuple[bool, str | None, str]:
    """Split ``[o][%fields[,token]]`` into (operators only, fields, token)."""
    flags, percent, rest = options.partition("%")
    if not percent:
        return "o" in flags, None, "0"
    fields, _, token = rest.partition(",")
    if not (token.isdigit() and len(token) <= 3):
        token = "0"
    return "o" in flags, fields, token


def _who_targets(
    asker: ChatProtocol, server: ChatServer, mask: str
) -> tuple[Channel | None, Iterable[ChatProtocol], bool]:
    """The channel asked about (if any), the users to list, and whether the
    list comes from a wildcard search (and so is capped)."""
    if is_channel_name(mask):
        channel = server.find_channel(mask)
        if channel is None or not _channel_visible(asker, channel):
            return None, (), False
        if asker in channel.members or is_operator(asker):
            return channel, list(channel.members), False
        members = [m for m in channel.members if "i" not in m.modes]
        return channel, members, False
    if mask == "0":
        mask = "*"
    if "*" not in mask and "?" not in mask:
        user = server.find_user(mask)
        return None, [user] if user is not None else [], False
    return None, _mask_search(asker, server, mask), True


def _mask_search(
    asker: ChatProtocol, server: ChatServer, mask: str
) -> Iterator[ChatProtocol]:
    """Visible registered users matching *mask* (lazily: callers stop early)."""
    match = mask_to_regex(mask).match
    full = "!" in mask or "@" in mask
    for user in server.nicks.values():
        if not user.registered:
            continue
        if full:
            matched = match(casefold(user.hostmask)) is not None
        else:
            matched = any(
                match(casefold(value)) is not None
                for value in (user.nick, user.username, user.host, user.realname)
            )
        if matched and _user_visible(asker, user):
            yield user


def _whox_values(
    asker: ChatProtocol,
    server: ChatServer,
    user: ChatProtocol,
    channel: Channel | None,
    fields: str,
    token: str,
) -> list[str]:
    """The RPL_WHOSPCRPL parameters for the requested *fields*."""
    values: list[str] = []
    for field in WHOX_FIELDS:
        if field not in fields:
            continue
        if field == "t":
            values.append(token)
        elif field == "c":
            values.append(channel.name if channel is not None else "*")
        elif field == "u":
            values.append(user.username)
        elif field == "i":
            shown = _sees_address(asker, user)
            values.append(_param(user.address) if shown else HIDDEN_IP)
        elif field == "h":
            values.append(_param(user.host))
        elif field == "s":
            values.append(user.home or server.node_name)
        elif field == "n":
            values.append(user.nick)
        elif field == "f":
            values.append(_status_flags(asker, user, channel))
        elif field == "d":
            values.append("0")
        elif field == "l":
            values.append(str(int(server.clock.seconds() - user.last_message)))
        elif field == "a":
            values.append(user.account or "0")
        elif field == "o":
            values.append("n/a")
        else:
            values.append(user.realname)
    return values


@command("WHO")
def handle_who(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``WHO <mask> [o][%fields[,token]]``: list users (352 or WHOX 354)."""
    mask = msg.params[0] if msg.params and msg.params[0] else "*"
    options = msg.params[1] if len(msg.params) > 1 else ""
    opers_only, fields, token = _parse_who_options(options)
    channel, users, capped = _who_targets(conn, server, mask)
    sent = 0
    for user in users:
        if opers_only and not is_operator(user):
            continue
        if capped and sent >= WHO_MAX_RESULTS:
            conn.reply(
                numerics.ERR_TOOMANYMATCHES, "WHO", "output too large, truncated"
            )
            break
        sent += 1
        shown = channel if channel is not None else _some_channel(conn, user)
        if fields is not None:
            conn.reply(
                numerics.RPL_WHOSPCRPL,
                *_whox_values(conn, server, user, shown, fields, token),
            )
            continue
        conn.reply(
            numerics.RPL_WHOREPLY,
            shown.name if shown is not None else "*",
            user.username,
            _param(user.host),
            user.home or server.node_name,
            user.nick,
            _status_flags(conn, user, shown),
            f"0 {user.realname}",
        )
    shown_mask = mask if " " not in mask and not mask.startswith(":") else "*"
    conn.reply(numerics.RPL_ENDOFWHO, shown_mask, "End of WHO list")


# -- WHOIS and WHOWAS ----------------------------------------------------


@command("WHOIS")
def handle_whois(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``WHOIS [<server>] <nick>``: everything we may say about one user."""
    if not msg.params or not msg.params[-1]:
        conn.reply(numerics.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    nicks = msg.params[1] if len(msg.params) > 1 else msg.params[0]
    if len(msg.params) > 1:
        target = msg.params[0]
        if casefold(target) != casefold(server.name) and not server.find_user(target):
            conn.reply(numerics.ERR_NOSUCHSERVER, target, "No such server")
            conn.reply(numerics.RPL_ENDOFWHOIS, nicks, "End of /WHOIS list")
            return
    user = server.find_user(nicks.split(",")[0])
    if user is None:
        conn.reply(numerics.ERR_NOSUCHNICK, nicks, "No such nick/channel")
    else:
        send_whois(conn, server, user)
    conn.reply(numerics.RPL_ENDOFWHOIS, nicks, "End of /WHOIS list")


def send_whois(conn: ChatProtocol, server: ChatServer, user: ChatProtocol) -> None:
    """The WHOIS numerics about *user* for *conn*, without the final 318."""
    nick = user.nick
    conn.reply(
        numerics.RPL_WHOISUSER,
        nick,
        user.username,
        _param(user.host),
        "*",
        user.realname,
    )
    _send_whois_channels(conn, user)
    conn.reply(
        numerics.RPL_WHOISSERVER,
        nick,
        user.home or server.node_name,
        server.config.network,
    )
    if is_operator(user):
        conn.reply(numerics.RPL_WHOISOPERATOR, nick, "is an IRC operator")
    if user.account is not None:
        conn.reply(numerics.RPL_WHOISACCOUNT, nick, user.account, "is logged in as")
    if "B" in user.modes:
        conn.reply(numerics.RPL_WHOISBOT, nick, "is a bot")
    if user.away is not None:
        conn.reply(numerics.RPL_AWAY, nick, user.away)
    send_whois_metadata(conn, server, user)
    if user.secure:
        conn.reply(numerics.RPL_WHOISSECURE, nick, "is using a secure connection")
    if _sees_address(conn, user):
        conn.reply(
            numerics.RPL_WHOISHOST,
            nick,
            f"is connecting from {user.username}@{user.host} {user.address}",
        )
        conn.reply(
            numerics.RPL_WHOISACTUALLY,
            nick,
            _param(user.address),
            "Is actually using host",
        )
    conn.reply(
        numerics.RPL_WHOISIDLE,
        nick,
        str(int(server.clock.seconds() - user.last_message)),
        str(int(user.connected_at)),
        "seconds idle, signon time",
    )


def _send_whois_channels(conn: ChatProtocol, user: ChatProtocol) -> None:
    """RPL_WHOISCHANNELS lines: secret channels only to their members, and an
    invisible user's channels only where *conn* is a member too."""
    multi = "multi-prefix" in conn.caps
    hidden = "i" in user.modes and conn is not user
    entries = [
        channel.prefix(user, multi) + channel.name
        for channel in user.channels.values()
        if conn in channel.members or not (hidden or "s" in channel.flags)
    ]
    line: list[str] = []
    size = 0
    for entry in entries:
        if line and size + len(entry) + 1 > WHOIS_CHANNELS_BUDGET:
            conn.reply(numerics.RPL_WHOISCHANNELS, user.nick, " ".join(line))
            line, size = [], 0
        line.append(entry)
        size += len(entry) + 1
    if line:
        conn.reply(numerics.RPL_WHOISCHANNELS, user.nick, " ".join(line))


@command("WHOWAS")
def handle_whowas(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``WHOWAS <nick> [<count>]``: who used a nick before, newest first
    (network-wide in a cluster: the reply may come later)."""
    if not msg.params or not msg.params[0]:
        conn.reply(numerics.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    nick = msg.params[0]
    count = msg.params[1] if len(msg.params) > 1 else ""
    limit = int(count) if count.isdigit() and int(count) > 0 else None
    later = Later(conn)
    looking = server.shared.whowas(nick, limit)
    looking.addCallback(
        lambda entries: later.run(lambda: _send_whowas(conn, nick, entries))
    )
    later.watch(looking, lambda: _send_whowas(conn, nick, []))


def _send_whowas(conn: ChatProtocol, nick: str, entries: list[WhowasEntry]) -> None:
    for entry in entries:
        conn.reply(
            numerics.RPL_WHOWASUSER,
            entry.nick,
            entry.username,
            _param(entry.host),
            "*",
            entry.realname,
        )
        conn.reply(
            numerics.RPL_WHOISSERVER,
            entry.nick,
            entry.server,
            time.strftime("%a %b %d %H:%M:%S %Y UTC", time.gmtime(entry.left_at)),
        )
    if not entries:
        conn.reply(numerics.ERR_WASNOSUCHNICK, nick, "There was no such nickname")
    conn.reply(numerics.RPL_ENDOFWHOWAS, nick, "End of WHOWAS")


# -- AWAY ----------------------------------------------------------------


@command("AWAY", registered=False)
def handle_away(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``AWAY [<text>]``: set (306) or clear (305) the away message.

    Channel peers with the ``away-notify`` capability get an ``AWAY``
    message when the state changes (not the user: 305/306 tell them), and
    so do extended-monitor watchers.  With ``draft/pre-away`` AWAY may come
    before registration; ``AWAY *`` leaves the visible state as it is.
    """
    if not conn.registered and "draft/pre-away" not in conn.caps:
        conn.reply(numerics.ERR_NOTREGISTERED, "You have not registered")
        return
    text = msg.params[0][: server.config.limits.away_length] if msg.params else ""
    previous = conn.away
    if text == "*" and "draft/pre-away" in conn.caps:
        text = previous or ""
    if text:
        conn.away = text
        conn.reply(numerics.RPL_NOWAWAY, "You have been marked as being away")
    else:
        conn.away = None
        conn.reply(numerics.RPL_UNAWAY, "You are no longer marked as being away")
    if conn.away != previous and conn.registered:
        server.network.user_changed(conn)
        params = (conn.away,) if conn.away is not None else ()
        relay = server.relay(Message("AWAY", params, conn.hostmask), conn)
        server.router.publish(relay, server.observers_of(conn, "away-notify"))


def send_away_on_join(server: ChatServer, conn: ChatProtocol, channel: Channel) -> None:
    """away-notify on JOIN: tell *channel*'s members with the capability that
    *conn*, who just joined, is away.  Nothing is sent when *conn* is not away.
    """
    if conn.away is None:
        return
    relay = server.relay(Message("AWAY", (conn.away,), conn.hostmask), conn)
    server.router.publish(
        relay, Audience.channel(channel, skip=conn, cap="away-notify")
    )


# -- ISON and USERHOST ---------------------------------------------------


def _nick_params(msg: Message) -> list[str]:
    """Every nick in the parameters, whether given apart or space-separated."""
    return [nick for param in msg.params for nick in param.split(" ") if nick]


@command("ISON", min_params=1)
def handle_ison(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``ISON <nick>{ <nick>}``: which of these nicks are online (303)."""
    online: dict[str, str] = {}
    for nick in _nick_params(msg):
        user = server.find_user(nick)
        if user is not None:
            online.setdefault(user.folded_nick, user.nick)
    conn.reply(numerics.RPL_ISON, " ".join(online.values()))


#: USERHOST answers at most this many nicks (modern.ircdocs.horse).
USERHOST_MAX = 5


@command("USERHOST", min_params=1)
def handle_userhost(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``USERHOST <nick>{ <nick>}``: ``nick[*]=(+|-)user@host`` for up to 5."""
    replies: list[str] = []
    for nick in _nick_params(msg)[:USERHOST_MAX]:
        user = server.find_user(nick)
        if user is None:
            continue
        oper = "*" if is_operator(user) else ""
        away = "-" if user.away is not None else "+"
        replies.append(f"{user.nick}{oper}={away}{user.username}@{user.host}")
    conn.reply(numerics.RPL_USERHOST, " ".join(replies))


# -- HELP ----------------------------------------------------------------

#: Help for every command: the syntax line, then a short description.
#: tests/test_queries.py checks that every registered command has an entry.
HELP_TEXTS: dict[str, tuple[str, ...]] = {
    "AWAY": (
        "AWAY [<text>]",
        "Mark yourself as away with <text>, or as back without it.",
    ),
    "BATCH": (
        "BATCH +<ref> draft/multiline <target> | BATCH -<ref>",
        "Open or close a batch of PRIVMSG or NOTICE lines sent as one message.",
    ),
    "CAP": (
        "CAP LS [302] | CAP LIST | CAP REQ :<caps> | CAP END",
        "Negotiate IRCv3 capabilities.",
    ),
    "CHATHISTORY": (
        "CHATHISTORY LATEST|BEFORE|AFTER|AROUND <target> <ref> <limit>"
        " | CHATHISTORY BETWEEN <target> <ref> <ref> <limit>"
        " | CHATHISTORY TARGETS <timestamp> <timestamp> <limit>",
        "Read channel or private history; <ref> is msgid=<id> or"
        " timestamp=<YYYY-MM-DDThh:mm:ss.sssZ> (or * for LATEST).",
    ),
    "CHGHOST": (
        "CHGHOST <nick> <user> <host>",
        "Change a user's user@host (IRC operators).",
    ),
    "HELP": ("HELP [<command>]", "List the commands, or explain one of them."),
    "HELPOP": ("HELPOP [<command>]", "The same as HELP."),
    "INFO": ("INFO", "Show information about this server."),
    "INVITE": ("INVITE <nick> <channel>", "Invite a user to a channel."),
    "ISON": ("ISON <nick>{ <nick>}", "Ask which of these nicks are online."),
    "JOIN": (
        "JOIN <channel>{,<channel>} [<key>{,<key>}] | JOIN 0",
        "Join channels, creating them if needed; JOIN 0 leaves them all.",
    ),
    "KICK": (
        "KICK <channel> <nick> [<reason>]",
        "Remove a user from a channel (channel operators).",
    ),
    "KILL": (
        "KILL <nick> <reason>",
        "Disconnect a user from the server (IRC operators).",
    ),
    "LIST": (
        "LIST [<channel>{,<channel>}] | LIST <pattern>",
        "List channels with their user counts and topics.",
    ),
    "LUSERS": ("LUSERS", "Show how many users and channels there are."),
    "MARKREAD": (
        "MARKREAD <target> [timestamp=<time>]",
        "Show or move forward your read marker in a channel or conversation.",
    ),
    "METADATA": (
        "METADATA <target> GET <key>... | LIST | SET <key> [:<value>] | CLEAR"
        " | SYNC; METADATA * SUB|UNSUB <key>... | SUBS",
        "Show or change the metadata (display-name, avatar, status...) of a user"
        " (* is you) or channel, and choose the keys you hear about.",
    ),
    "MODE": (
        "MODE <nick> [<modes>] | MODE <channel> [<modes> [<args>...]]",
        "Show or change user modes (B, i, w) or channel modes (b, i, k, l, m, n,"
        " s, t, o, v).",
    ),
    "MONITOR": (
        "MONITOR +|- <nick>{,<nick>} | MONITOR C|L|S",
        "Watch nicks: be told when they come online or leave.",
    ),
    "MOTD": ("MOTD", "Show the message of the day."),
    "NAMES": ("NAMES <channel>{,<channel>}", "List the users in channels."),
    "NICK": ("NICK <nick>", "Choose or change your nickname."),
    "NOTICE": (
        "NOTICE <target>{,<target>} <text>",
        "Like PRIVMSG, but never answered automatically.",
    ),
    "OPER": ("OPER <name> <password>", "Become an IRC operator."),
    "PART": (
        "PART <channel>{,<channel>} [<reason>]",
        "Leave channels.",
    ),
    "PASS": ("PASS <password>", "Give the server password, before NICK and USER."),
    "PING": ("PING <token>", "Check the connection; the server answers PONG."),
    "PONG": ("PONG <token>", "Answer a PING from the server."),
    "PRIVMSG": (
        "PRIVMSG <target>{,<target>} <text>",
        "Send a message to users or channels (@#chan or +#chan for members"
        " with that status).",
    ),
    "QUIT": ("QUIT [<reason>]", "Disconnect from the server."),
    "REDACT": (
        "REDACT <target> <msgid> [:<reason>]",
        "Delete a message you sent (operators: any message) from the target"
        " and its history.",
    ),
    "RENAME": (
        "RENAME <channel> <new name> [:<reason>]",
        "Give a channel you operate a new name.",
    ),
    "SEARCH": (
        "SEARCH in=<target>;text=<words>;from=<nick>;after=<time>;before=<time>;"
        "limit=<n>",
        "Search the messages you may read; every attribute is optional.",
    ),
    "SETNAME": ("SETNAME :<realname>", "Change your realname."),
    "TAGMSG": (
        "TAGMSG <target>",
        "Send only message tags (typing notifications, reactions...).",
    ),
    "TIME": ("TIME", "Show the server's time."),
    "TOPIC": (
        "TOPIC <channel> [<topic>]",
        "Show a channel's topic, or set it (an empty <topic> clears it).",
    ),
    "USER": (
        "USER <username> 0 * <realname>",
        "Give your username and real name when connecting.",
    ),
    "USERHOST": (
        "USERHOST <nick>{ <nick>}",
        "Show user@host, operator and away status of up to five nicks.",
    ),
    "VERSION": ("VERSION", "Show the server's version and supported features."),
    "WALLOPS": (
        "WALLOPS <text>",
        "Send a message to operators and users with mode +w (IRC operators).",
    ),
    "WHO": (
        "WHO <channel>|<nick>|<mask> [o][%<fields>[,<token>]]",
        "List users in a channel or matching a mask; o lists only operators,"
        " %fields asks for WHOX replies (fields from tcuihsnfdlaor).",
        f"A wildcard mask answers at most {WHO_MAX_RESULTS} users.",
    ),
    "WHOIS": ("WHOIS [<server>] <nick>", "Show information about a user."),
    "WHOWAS": (
        "WHOWAS <nick> [<count>]",
        "Show who used a nickname before, newest first.",
    ),
}

#: How many command names go on one line of the HELP index.
HELP_INDEX_PER_LINE = 10


@command("HELP")
@command("HELPOP")
def handle_help(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``HELP [<subject>]`` (or ``HELPOP``): 704, 705..., 706, or 524 for
    unknown subjects."""
    requested = msg.params[0] if msg.params else ""
    valid = requested and " " not in requested and requested[0] != ":"
    subject = requested if valid else "*"
    name = requested.upper()
    if not requested:
        names = sorted(COMMANDS)
        lines = [
            "Commands (HELP <command> explains one):",
            *(
                " ".join(names[start : start + HELP_INDEX_PER_LINE])
                for start in range(0, len(names), HELP_INDEX_PER_LINE)
            ),
        ]
        title = "** Help System **"
    elif name in COMMANDS and name in HELP_TEXTS:
        lines = list(HELP_TEXTS[name])
        title = f"** The {name} command **"
    else:
        conn.reply(
            numerics.ERR_HELPNOTFOUND, subject, "No help available on this topic"
        )
        return
    conn.reply(numerics.RPL_HELPSTART, subject, title)
    conn.reply(numerics.RPL_HELPTXT, subject, "")
    for line in lines[:-1]:
        conn.reply(numerics.RPL_HELPTXT, subject, line)
    conn.reply(numerics.RPL_ENDOFHELP, subject, lines[-1])
