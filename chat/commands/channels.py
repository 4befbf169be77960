"""Channel commands: JOIN, PART, NAMES, TOPIC, LIST, MODE, KICK, INVITE.

``MODE`` lives here for both of its targets: a channel name goes to the
channel modes, anything else to the user modes of the sender.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from chat import numerics
from chat.casemap import casefold, is_channel_name, mask_matches, valid_channel_name
from chat.channel import MEMBER_MODES, ListEntry
from chat.commands import command
from chat.commands.ircv3 import join_relay, notify_invite
from chat.commands.metadata import send_metadata_on_join
from chat.commands.queries import send_away_on_join
from chat.commands.readmarker import send_marker_on_join
from chat.history.record import remember_channel
from chat.message import Message
from chat.modes import (
    FLAG_MODES,
    KEY_MODE,
    LIMIT_MODE,
    LIST_MODES,
    ModeChange,
    ModeRequest,
    format_changes,
    normalize_list_mask,
    parse_channel_modes,
    parse_limit,
    parse_user_modes,
    valid_key,
)
from chat.router import Audience

if TYPE_CHECKING:
    from chat.channel import Channel
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

#: The longest line on the wire without tags, CR LF included (RFC 1459).
LINE_BYTES = 512


def truncate_utf8(text: str, limit: int) -> str:
    """*text* cut to at most *limit* UTF-8 bytes, never inside a character."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def fit_trailing(text: str, limit: int, source: str, *words: str) -> str:
    """*text* cut to *limit* bytes, and further so that the relayed line
    ``:source words... :text`` stays within 512 bytes."""
    head = len(f":{source} {' '.join(words)} :".encode())
    return truncate_utf8(text, min(limit, LINE_BYTES - 2 - head))


def echo(text: str) -> str:
    """*text* as a middle parameter of a reply, or ``*`` when it cannot be one
    (empty, with a space, or starting with ``:``: input sent as a trailing
    parameter may be any of these)."""
    if not text or " " in text or text[0] == ":":
        return "*"
    return text


def _no_such_channel(conn: ChatProtocol, name: str) -> None:
    conn.reply(numerics.ERR_NOSUCHCHANNEL, echo(name), "No such channel")


def _not_on_channel(conn: ChatProtocol, channel: Channel) -> None:
    conn.reply(numerics.ERR_NOTONCHANNEL, channel.name, "You're not on that channel")


def _joined_channel(
    conn: ChatProtocol, server: ChatServer, name: str
) -> Channel | None:
    """Channel *name* if *conn* is on it; else answer 403 or 442 and None."""
    channel = server.find_channel(name)
    if channel is None:
        _no_such_channel(conn, name)
    elif conn not in channel.members:
        _not_on_channel(conn, channel)
    else:
        return channel
    return None


def _not_operator(conn: ChatProtocol, channel: Channel) -> None:
    conn.reply(
        numerics.ERR_CHANOPRIVSNEEDED, channel.name, "You're not channel operator"
    )


def _no_such_nick(conn: ChatProtocol, nick: str) -> None:
    conn.reply(numerics.ERR_NOSUCHNICK, echo(nick), "No such nick/channel")


# -- JOIN, PART, NAMES ---------------------------------------------------


@command("JOIN", min_params=1)
def handle_join(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``JOIN <channel>{,<channel>} [<key>{,<key>}]`` or ``JOIN 0``."""
    names = msg.params[0].split(",")
    if not any(names):
        conn.reply(numerics.ERR_NEEDMOREPARAMS, "JOIN", "Not enough parameters")
        return
    keys = msg.params[1].split(",") if len(msg.params) > 1 else []
    for index, name in enumerate(names):
        if name == "0":
            part_all(conn, server)
        elif name:
            key = keys[index] if index < len(keys) else ""
            join(conn, server, name, key)


def join(conn: ChatProtocol, server: ChatServer, name: str, key: str = "") -> None:
    """Join *conn* to channel *name*, creating it, or answer why not."""
    limits = server.config.limits
    if not valid_channel_name(name, limits.channel_length):
        _no_such_channel(conn, name)
        return
    folded = casefold(name)
    if folded in conn.channels:
        return
    if len(conn.channels) >= limits.max_channels:
        conn.reply(
            numerics.ERR_TOOMANYCHANNELS, name, "You have joined too many channels"
        )
        return
    channel = server.channels.get(folded)
    if channel is None:
        channel = server.create_channel(name)
        channel.add(conn, "o")
    else:
        refusal = _join_refusal(conn, channel, key)
        if refusal is not None:
            numeric, text = refusal
            conn.reply(numeric, channel.name, text)
            return
        channel.add(conn)
        channel.invited.discard(conn)
    conn.channels[folded] = channel
    relay = join_relay(server, conn, channel)
    server.router.publish(relay, Audience.channel(channel))
    send_away_on_join(server, conn, channel)
    remember_channel(server, relay, channel)
    send_marker_on_join(conn, server, channel)
    send_metadata_on_join(conn, server, channel)
    if channel.topic:
        send_topic(conn, channel)
    if "no-implicit-names" not in conn.caps:
        send_names(conn, channel)
    server.services.joined(conn, channel)


def _join_refusal(
    conn: ChatProtocol, channel: Channel, key: str
) -> tuple[str, str] | None:
    """Why *conn* may not join *channel*, as (numeric, text), or None.

    An invitation lets its holder past ``+i``, ``+l`` and bans, as in Ergo;
    the key still applies.  An invite exception (``+I``) lets past ``+i``
    and a ban exception (``+e``) past bans.
    """
    invited = conn in channel.invited
    if channel.key is not None and key != channel.key:
        return numerics.ERR_BADCHANNELKEY, "Cannot join channel (+k)"
    if invited:
        return None
    if channel.limit is not None and len(channel.members) >= channel.limit:
        return numerics.ERR_CHANNELISFULL, "Cannot join channel (+l)"
    if "i" in channel.flags and not channel.is_invite_excepted(conn):
        return numerics.ERR_INVITEONLYCHAN, "Cannot join channel (+i)"
    if channel.is_banned(conn):
        return numerics.ERR_BANNEDFROMCHAN, "Cannot join channel (+b)"
    return None


def send_topic(conn: ChatProtocol, channel: Channel) -> None:
    """RPL_TOPIC and RPL_TOPICWHOTIME, or RPL_NOTOPIC."""
    if not channel.topic:
        conn.reply(numerics.RPL_NOTOPIC, channel.name, "No topic is set")
        return
    conn.reply(numerics.RPL_TOPIC, channel.name, channel.topic)
    conn.reply(
        numerics.RPL_TOPICWHOTIME,
        channel.name,
        channel.topic_set_by,
        str(channel.topic_set_at),
    )


def send_names(conn: ChatProtocol, channel: Channel) -> None:
    """RPL_NAMREPLY lines, each under 512 bytes, then RPL_ENDOFNAMES."""
    send_namreply(conn, channel)
    conn.reply(numerics.RPL_ENDOFNAMES, channel.name, "End of /NAMES list")


def send_namreply(conn: ChatProtocol, channel: Channel) -> None:
    """The RPL_NAMREPLY lines of *channel*, each under 512 bytes.

    A secret channel shows nothing to non-members, and invisible users are
    only shown to those who share the channel.
    """
    member = conn in channel.members
    if channel.is_visible_to(conn):
        symbol = "@" if "s" in channel.flags else "="
        multi = "multi-prefix" in conn.caps
        full = "userhost-in-names" in conn.caps
        entries = [
            channel.prefix(user, multi) + (user.hostmask if full else user.nick)
            for user in channel.members
            if member or "i" not in user.modes
        ]
        head = f":{conn.server.name} {numerics.RPL_NAMREPLY} {conn.nick} {symbol} "
        budget = LINE_BYTES - 2 - len(f"{head}{channel.name} :".encode())
        line: list[str] = []
        size = 0
        for entry in entries:
            length = len(entry.encode("utf-8")) + 1
            if line and size + length - 1 > budget:
                conn.reply(numerics.RPL_NAMREPLY, symbol, channel.name, " ".join(line))
                line, size = [], 0
            line.append(entry)
            size += length
        if line:
            conn.reply(numerics.RPL_NAMREPLY, symbol, channel.name, " ".join(line))


@command("NAMES")
def handle_names(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``NAMES [<channel>{,<channel>}]``.

    Several channels (``TARGMAX=NAMES:``) get their RPL_NAMREPLY lines and
    one RPL_ENDOFNAMES naming them all, as RFC 2812 3.2.5 shows.
    """
    if not msg.params or not msg.params[0]:
        conn.reply(numerics.RPL_ENDOFNAMES, "*", "End of /NAMES list")
        return
    names = [name for name in msg.params[0].split(",") if name]
    if len(names) == 1:
        channel = server.find_channel(names[0])
        if channel is not None:
            send_names(conn, channel)
            return
    for name in names:
        channel = server.find_channel(name)
        if channel is not None:
            send_namreply(conn, channel)
    conn.reply(numerics.RPL_ENDOFNAMES, echo(msg.params[0]), "End of /NAMES list")


@command("PART", min_params=1)
def handle_part(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``PART <channel>{,<channel>} [<reason>]``."""
    reason = msg.params[1] if len(msg.params) > 1 else ""
    for name in msg.params[0].split(","):
        if not name:
            continue
        channel = _joined_channel(conn, server, name)
        if channel is not None:
            part(conn, server, channel, reason)


def part(conn: ChatProtocol, server: ChatServer, channel: Channel, reason: str) -> None:
    """Announce that *conn* leaves *channel*, then remove it."""
    reason = fit_trailing(reason, LINE_BYTES, conn.hostmask, "PART", channel.name)
    params = (channel.name, reason) if reason else (channel.name,)
    relay = server.relay(Message("PART", params, conn.hostmask), conn)
    server.router.publish(relay, Audience.channel(channel))
    remember_channel(server, relay, channel)
    server.leave_channel(conn, channel)


def part_all(conn: ChatProtocol, server: ChatServer) -> None:
    """``JOIN 0``: leave every channel, as if by PART without a reason."""
    for channel in list(conn.channels.values()):
        part(conn, server, channel, "")


# -- TOPIC ----------------------------------------------------------------


@command("TOPIC", min_params=1)
def handle_topic(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``TOPIC <channel> [<topic>]``: show, set, or (empty) clear the topic."""
    channel = server.find_channel(msg.params[0])
    if channel is None:
        _no_such_channel(conn, msg.params[0])
        return
    member = conn in channel.members
    if len(msg.params) < 2:
        if channel.is_visible_to(conn):
            send_topic(conn, channel)
        else:
            _not_on_channel(conn, channel)
        return
    if not member:
        _not_on_channel(conn, channel)
        return
    if "t" in channel.flags and not channel.is_operator(conn):
        _not_operator(conn, channel)
        return
    limit = server.config.limits.topic_length
    channel.topic = fit_trailing(
        msg.params[1], limit, conn.hostmask, "TOPIC", channel.name
    )
    channel.topic_set_by = conn.nick if channel.topic else ""
    channel.topic_set_at = int(server.clock.seconds()) if channel.topic else 0
    relay = server.relay(
        Message("TOPIC", (channel.name, channel.topic), conn.hostmask), conn
    )
    server.router.publish(relay, Audience.channel(channel))
    remember_channel(server, relay, channel)
    server.services.channel_changed(channel)


# -- LIST -----------------------------------------------------------------


@command("LIST")
def handle_list(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``LIST [<channel|mask>{,...}] [<elistcond>{,...}]``.

    Masks may use ``*`` and ``?``, and ``!mask`` leaves out the channels it
    matches (``ELIST=M`` and ``N``).  Conditions (``ELIST=C``, ``T``, ``U``):
    ``>n``/``<n`` keep channels with more or fewer than *n* users,
    ``C>n``/``C<n`` those created more or less than *n* minutes ago, and
    ``T>n``/``T<n`` those whose topic was set more or less than *n* minutes
    ago.  Secret channels are only listed to their members.  Malformed
    conditions are ignored.
    """
    names: list[str] = []
    excluded: list[str] = []
    conditions: list[_Condition] = []
    for index, param in enumerate(msg.params[:2]):
        for item in param.split(","):
            condition = _parse_condition(item)
            if condition is not None:
                conditions.append(condition)
            elif item[:1] in ("<", ">") or item[:2] in _TIME_CONDITIONS:
                continue  # malformed condition
            elif item.startswith("!") and index == 0:
                excluded.append(item[1:])
            elif item and index == 0:
                names.append(item)
    now = server.clock.seconds()
    conn.reply(numerics.RPL_LISTSTART, "Channel", "Users  Name")
    for channel in _list_candidates(server, names):
        if not channel.is_visible_to(conn):
            continue
        if any(mask_matches(mask, channel.name) for mask in excluded):
            continue
        if all(condition.keeps(channel, now) for condition in conditions):
            count = str(len(channel.members))
            conn.reply(numerics.RPL_LIST, channel.name, count, channel.topic)
    conn.reply(numerics.RPL_LISTEND, "End of /LIST")


#: The prefixes of the time conditions: creation (C) and topic (T) time.
_TIME_CONDITIONS = ("C<", "C>", "T<", "T>")


@dataclass(frozen=True, slots=True)
class _Condition:
    """One LIST condition: *kind* ``U`` (users), ``C`` or ``T`` (minutes)."""

    kind: str
    more: bool
    value: int

    def keeps(self, channel: Channel, now: float) -> bool:
        """Whether *channel* passes this condition at time *now*."""
        if self.kind == "U":
            measured = float(len(channel.members))
            limit = float(self.value)
        else:
            if self.kind == "T" and not channel.topic:
                return False
            since = channel.created if self.kind == "C" else channel.topic_set_at
            measured, limit = now - since, self.value * 60.0
        return measured > limit if self.more else measured < limit


def _parse_condition(item: str) -> _Condition | None:
    """``>n``, ``<n``, ``C>n``, ``C<n``, ``T>n`` or ``T<n``; None otherwise."""
    kind = "U"
    if item[:2] in _TIME_CONDITIONS:
        kind, item = item[0], item[1:]
    number = item[1:]
    if item[:1] not in ("<", ">") or not number.isascii() or not number.isdigit():
        return None
    return _Condition(kind, item[0] == ">", int(number))


def _list_candidates(server: ChatServer, names: list[str]) -> list[Channel]:
    """The channels named or matched by *names*, in order; all when empty."""
    if not names:
        return list(server.channels.values())
    found: dict[str, Channel] = {}
    for name in names:
        if "*" in name or "?" in name:
            for folded, channel in server.channels.items():
                if mask_matches(name, channel.name):
                    found.setdefault(folded, channel)
        else:
            named = server.find_channel(name)
            if named is not None:
                found.setdefault(named.folded, named)
    return list(found.values())


# -- MODE -----------------------------------------------------------------


@command("MODE", min_params=1)
def handle_mode(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``MODE <target> [<modestring> [<mode arguments>...]]``."""
    if is_channel_name(msg.params[0]):
        channel_mode(conn, server, msg)
    else:
        user_mode(conn, server, msg)


def user_mode(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """Show or change the sender's own user modes (``i``, ``w``, ``-o``)."""
    target = server.find_user(msg.params[0])
    if target is None:
        _no_such_nick(conn, msg.params[0])
        return
    if target is not conn:
        conn.reply(numerics.ERR_USERSDONTMATCH, "Cant change mode for other users")
        return
    if len(msg.params) < 2:
        conn.reply(numerics.RPL_UMODEIS, "+" + "".join(sorted(conn.modes)))
        return
    requests, unknown = parse_user_modes(msg.params[1])
    applied: list[ModeChange] = []
    for request in requests:
        if request.adding and request.letter == "o":
            continue  # only OPER makes an operator
        if not server.set_user_mode(conn, request.letter, request.adding):
            continue
        applied.append(ModeChange(request.adding, request.letter))
    if applied:
        line = Message("MODE", (conn.nick, *format_changes(applied)), conn.nick)
        conn.write(line.to_bytes(force_trailing=True))
    if unknown:
        conn.reply(numerics.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")


def channel_mode(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """Show a channel's modes, list its bans, or change its modes."""
    channel = server.find_channel(msg.params[0])
    if channel is None:
        _no_such_channel(conn, msg.params[0])
        return
    if len(msg.params) < 2:
        show_key = conn in channel.members
        conn.reply(
            numerics.RPL_CHANNELMODEIS, channel.name, *channel.mode_string(show_key)
        )
        conn.reply(numerics.RPL_CREATIONTIME, channel.name, str(channel.created))
        return
    requests, unknown = parse_channel_modes(msg.params[1], msg.params[2:])
    for letter in unknown:
        conn.reply(numerics.ERR_UNKNOWNMODE, echo(letter), "is unknown mode char to me")
    for letter in dict.fromkeys(r.letter for r in requests if r.is_list_query):
        send_mask_list(conn, channel, letter)
    changes = [request for request in requests if _is_change(request)]
    if not changes:
        return
    if not channel.is_operator(conn):
        _not_operator(conn, channel)
        return
    apply_channel_modes(conn, server, channel, changes)


def _is_change(request: ModeRequest) -> bool:
    """Whether *request* asks for a change (a list query or a mode missing
    its parameter does not: the docs say such modes are ignored)."""
    if request.param is not None:
        return True
    if request.letter in LIST_MODES or request.letter in MEMBER_MODES:
        return False
    return not (request.adding and request.letter in KEY_MODE + LIMIT_MODE)


def apply_channel_modes(
    conn: ChatProtocol,
    server: ChatServer,
    channel: Channel,
    requests: list[ModeRequest],
) -> None:
    """Apply *requests* in order and broadcast one MODE line of what changed.

    At most ``MODES`` requests with a parameter are considered; the others
    are ignored, as are changes that would push the line past 512 bytes.
    """
    budget = LINE_BYTES - 3 - len(f":{conn.hostmask} MODE {channel.name} ".encode())
    with_param = 0
    applied: list[ModeChange] = []
    for request in requests:
        if request.param is not None:
            with_param += 1
            if with_param > server.config.limits.modes_per_command:
                continue
        change = _prepare_change(conn, server, channel, request)
        if change is None:
            continue
        if len(" ".join(format_changes([*applied, change])).encode()) > budget:
            break
        _commit_change(conn, server, channel, change)
        applied.append(change)
    if applied:
        line = Message("MODE", (channel.name, *format_changes(applied)), conn.hostmask)
        relay = server.relay(line, conn)
        server.router.publish(relay, Audience.channel(channel))
        remember_channel(server, relay, channel)
        server.services.channel_changed(channel)


def _prepare_change(
    conn: ChatProtocol, server: ChatServer, channel: Channel, request: ModeRequest
) -> ModeChange | None:
    """The change *request* makes to *channel*, or None (with the numeric
    that says why, if any).  Nothing is changed yet."""
    adding, letter, param = request.adding, request.letter, request.param
    if letter in FLAG_MODES:
        if (letter in channel.flags) == adding:
            return None
        return ModeChange(adding, letter)
    if letter == KEY_MODE:
        return _prepare_key(conn, channel, adding, param)
    if letter == LIMIT_MODE:
        return _prepare_limit(conn, channel, adding, param)
    assert param is not None  # _is_change keeps b, e, I, o and v only with one
    if letter in LIST_MODES:
        return _prepare_entry(conn, server, channel, request)
    user = server.find_user(param)
    if user is None:
        _no_such_nick(conn, param)
        return None
    if user not in channel.members:
        conn.reply(
            numerics.ERR_USERNOTINCHANNEL,
            user.nick,
            channel.name,
            "They aren't on that channel",
        )
        return None
    if channel.has_mode(user, letter) == adding:
        return None
    return ModeChange(adding, letter, user.nick)


def _prepare_key(
    conn: ChatProtocol, channel: Channel, adding: bool, key: str | None
) -> ModeChange | None:
    if not adding:
        return None if channel.key is None else ModeChange(False, KEY_MODE, "*")
    assert key is not None
    if not valid_key(key):
        conn.reply(numerics.ERR_INVALIDKEY, channel.name, "Key is not well-formed")
        return None
    if channel.key == key:
        return None
    if channel.key is not None:
        conn.reply(numerics.ERR_KEYSET, channel.name, "Channel key already set")
        return None
    return ModeChange(True, KEY_MODE, key)


def _prepare_limit(
    conn: ChatProtocol, channel: Channel, adding: bool, text: str | None
) -> ModeChange | None:
    if not adding:
        return None if channel.limit is None else ModeChange(False, LIMIT_MODE)
    assert text is not None
    limit = parse_limit(text)
    if limit is None:
        conn.reply(
            numerics.ERR_INVALIDMODEPARAM,
            channel.name,
            LIMIT_MODE,
            echo(text),
            "Invalid limit: a positive number is needed",
        )
        return None
    if limit == channel.limit:
        return None
    return ModeChange(True, LIMIT_MODE, str(limit))


#: What each list mode holds, for the error texts.
_LIST_NAMES = {"b": "ban", "e": "exception", "I": "invite exception"}


def _prepare_entry(
    conn: ChatProtocol, server: ChatServer, channel: Channel, request: ModeRequest
) -> ModeChange | None:
    """A change to list *request.letter* (``b``, ``e`` or ``I``)."""
    adding, letter, raw = request.adding, request.letter, request.param or ""
    mask = normalize_list_mask(raw)
    if mask is None:
        conn.reply(
            numerics.ERR_INVALIDMODEPARAM,
            channel.name,
            letter,
            echo(raw),
            f"Invalid {_LIST_NAMES[letter]} mask",
        )
        return None
    existing = channel.find_entry(letter, mask)
    if not adding:
        return None if existing is None else ModeChange(False, letter, existing.mask)
    if existing is not None:
        return None
    if len(channel.mask_list(letter)) >= server.config.limits.max_list_entries:
        conn.reply(
            numerics.ERR_BANLISTFULL,
            channel.name,
            letter,
            f"Channel {_LIST_NAMES[letter]} list is full",
        )
        return None
    return ModeChange(True, letter, mask)


def _commit_change(
    conn: ChatProtocol, server: ChatServer, channel: Channel, change: ModeChange
) -> None:
    """Make a change that `_prepare_change` accepted."""
    adding, letter, param = change.adding, change.letter, change.param
    if letter in FLAG_MODES:
        if adding:
            channel.flags.add(letter)
        else:
            channel.flags.discard(letter)
    elif letter == KEY_MODE:
        channel.key = param if adding else None
    elif letter == LIMIT_MODE:
        channel.limit = int(param) if adding and param else None
    elif letter in LIST_MODES:
        assert param is not None
        entries = channel.mask_list(letter)
        if adding:
            now = int(server.clock.seconds())
            entries.append(ListEntry(param, conn.hostmask, now))
        else:
            entries[:] = [entry for entry in entries if entry.mask != param]
    else:
        user = server.find_user(param or "")
        assert user is not None
        channel.set_member_mode(user, letter, adding)


#: List mode -> its entry numeric, end numeric and end text.
_LIST_REPLIES = {
    "b": (numerics.RPL_BANLIST, numerics.RPL_ENDOFBANLIST, "End of channel ban list"),
    "e": (
        numerics.RPL_EXCEPTLIST,
        numerics.RPL_ENDOFEXCEPTLIST,
        "End of channel exception list",
    ),
    "I": (
        numerics.RPL_INVITELIST,
        numerics.RPL_ENDOFINVITELIST,
        "End of channel invite exception list",
    ),
}


def send_mask_list(conn: ChatProtocol, channel: Channel, letter: str) -> None:
    """The entries of list *letter* (hidden from outsiders of a secret channel)."""
    numeric, end, text = _LIST_REPLIES[letter]
    if channel.is_visible_to(conn):
        for entry in channel.mask_list(letter):
            conn.reply(
                numeric, channel.name, entry.mask, entry.set_by, str(entry.set_at)
            )
    conn.reply(end, channel.name, text)


# -- KICK -----------------------------------------------------------------


@command("KICK", min_params=2)
def handle_kick(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``KICK <channel> <nick>{,<nick>} [<reason>]``, or as many channels as
    nicks (RFC 2812).  At most ``max_targets`` users per command."""
    names = [name for name in msg.params[0].split(",") if name]
    nicks = [nick for nick in msg.params[1].split(",") if nick]
    if not names or not nicks or len(names) not in (1, len(nicks)):
        conn.reply(numerics.ERR_NEEDMOREPARAMS, "KICK", "Not enough parameters")
        return
    if len(names) == 1:
        names = names * len(nicks)
    limits = server.config.limits
    reason = msg.params[2] if len(msg.params) > 2 and msg.params[2] else conn.nick
    for name, nick in list(zip(names, nicks, strict=True))[: limits.max_targets]:
        kick(conn, server, name, nick, reason)


def kick(
    conn: ChatProtocol, server: ChatServer, name: str, nick: str, reason: str
) -> None:
    """Remove *nick* from channel *name* by force, or answer why not."""
    channel = _joined_channel(conn, server, name)
    if channel is None:
        return
    if not channel.is_operator(conn):
        _not_operator(conn, channel)
        return
    victim = server.find_user(nick)
    if victim is None:
        _no_such_nick(conn, nick)
        return
    if victim not in channel.members:
        conn.reply(
            numerics.ERR_USERNOTINCHANNEL,
            victim.nick,
            channel.name,
            "They aren't on that channel",
        )
        return
    limit = server.config.limits.kick_length
    reason = fit_trailing(
        reason, limit, conn.hostmask, "KICK", channel.name, victim.nick
    )
    line = Message("KICK", (channel.name, victim.nick, reason), conn.hostmask)
    relay = server.relay(line, conn)
    server.router.publish(relay, Audience.channel(channel))
    remember_channel(server, relay, channel)
    server.leave_channel(victim, channel)


# -- INVITE ---------------------------------------------------------------


@command("INVITE")
def handle_invite(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``INVITE <nick> <channel>``, or ``INVITE`` to list one's invitations."""
    if not msg.params:
        send_invitations(conn, server)
        return
    if len(msg.params) < 2:
        conn.reply(numerics.ERR_NEEDMOREPARAMS, "INVITE", "Not enough parameters")
        return
    nick, name = msg.params[0], msg.params[1]
    target = server.find_user(nick)
    if target is None:
        _no_such_nick(conn, nick)
        return
    channel = _joined_channel(conn, server, name)
    if channel is None:
        return
    if "i" in channel.flags and not channel.is_operator(conn):
        _not_operator(conn, channel)
        return
    if target in channel.members:
        conn.reply(
            numerics.ERR_USERONCHANNEL,
            target.nick,
            channel.name,
            "is already on channel",
        )
        return
    channel.invited.add(target)
    conn.reply(numerics.RPL_INVITING, target.nick, channel.name)
    announce_invite(server, channel, conn, target)
    if target.away is not None:
        conn.reply(numerics.RPL_AWAY, target.nick, target.away)


def announce_invite(
    server: ChatServer, channel: Channel, inviter: ChatProtocol, target: ChatProtocol
) -> None:
    """Send the INVITE message: the one place invitations are announced.

    *target* and the channel operators with ``invite-notify`` hear of it.
    """
    line = Message("INVITE", (target.nick, channel.name), inviter.hostmask)
    relay = server.relay(line, inviter)
    server.router.publish(relay, Audience.to(target))
    notify_invite(server, relay, channel, inviter, target)


def send_invitations(conn: ChatProtocol, server: ChatServer) -> None:
    """The channels *conn* is invited to (336 each), then 337."""
    for channel in server.channels.values():
        if conn in channel.invited:
            conn.reply(numerics.RPL_INVITED, channel.name)
    conn.reply(numerics.RPL_ENDOFINVITED, "End of /INVITE list")
