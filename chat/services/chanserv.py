"""ChanServ: channel registration.

``/msg ChanServ REGISTER #channel`` (or ``/CS ...``) by a channel operator
logged in to an account makes them the founder.  The topic, the modes and
the list of operators persist: a registered channel gets them back when
it is created again (after a restart, or once empty), and its founder and
operators get ``+o`` when they join.

In a cluster a registration, change or drop here is told to the other
nodes (`chat.network.SharedState.channels_changed`), which read that
channel again from the shared database (`reload`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat.casemap import casefold
from chat.message import Message
from chat.router import Audience
from chat.services import Later, ServiceBot, ServiceHandler
from chat.storage import (
    Account,
    ChannelExistsError,
    RegisteredChannel,
    log_store_failure,
)

if TYPE_CHECKING:
    from chat.channel import Channel
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

log = Logger()
_UNAVAILABLE = "The channel service is unavailable; try again later"


def snapshot(channel: Channel, record: RegisteredChannel) -> RegisteredChannel:
    """*record* with the current topic and modes of *channel*."""
    return dataclasses.replace(
        record,
        name=channel.name,
        topic=channel.topic,
        topic_set_by=channel.topic_set_by,
        topic_set_at=channel.topic_set_at,
        modes="".join(sorted(channel.flags)),
        key=channel.key,
        limit=channel.limit,
    )


class ChanServ(ServiceBot):
    """The channel registration service; registered channels stay in memory."""

    nick = "ChanServ"
    help = {
        "REGISTER": "REGISTER <#channel>: register a channel you operate",
        "INFO": "INFO <#channel>: show a registered channel",
        "OP": "OP <#channel> <account>: give an account +o on join (founder)",
        "DEOP": "DEOP <#channel> <account>: take it back (founder)",
        "DROP": "DROP <#channel>: unregister a channel (founder)",
    }

    def __init__(self, server: ChatServer) -> None:
        super().__init__(server)
        #: Registered channels by folded name, loaded by `load`.
        self.registered: dict[str, RegisteredChannel] = {}

    def load(self) -> Deferred[None]:
        """Read the registered channels from the store."""

        def loaded(channels: list[RegisteredChannel]) -> None:
            self.registered = {channel.folded: channel for channel in channels}
            for channel in channels:
                live = self.server.find_channel(channel.name)
                if live is not None:
                    self.restore(live)

        return self.server.accounts.store.list_channels().addCallback(loaded)

    def reload(self, folded: str) -> None:
        """Channel *folded* was registered, changed or dropped by another
        server: read it again from the shared store."""

        def loaded(channels: list[RegisteredChannel]) -> None:
            record = next((c for c in channels if c.folded == folded), None)
            if record is None:
                self.registered.pop(folded, None)
            else:
                self.registered[folded] = record

        reading = self.server.accounts.store.list_channels().addCallback(loaded)
        reading.addErrback(self._error, folded)

    def reload_all(self) -> None:
        """Read every registered channel again (other servers may have
        changed some while they could not tell)."""

        def loaded(channels: list[RegisteredChannel]) -> None:
            self.registered = {channel.folded: channel for channel in channels}

        reading = self.server.accounts.store.list_channels().addCallback(loaded)
        reading.addErrback(self._error, "*")

    def _shared(self, folded: str) -> None:
        """Tell the other servers that *folded* changed in the store."""
        self.server.shared.channels_changed(folded)

    def handlers(self) -> dict[str, ServiceHandler]:
        return {
            "REGISTER": self.register,
            "INFO": self.info,
            "OP": self.op,
            "DEOP": self.deop,
            "DROP": self.drop,
        }

    # -- hooks ----------------------------------------------------------

    def restore(self, channel: Channel) -> None:
        """Give a newly created *channel* its registered topic and modes."""
        record = self.registered.get(channel.folded)
        if record is None:
            return
        channel.topic = record.topic
        channel.topic_set_by = record.topic_set_by
        channel.topic_set_at = record.topic_set_at
        channel.flags = set(record.modes)
        channel.key = record.key
        channel.limit = record.limit

    def is_operator(self, record: RegisteredChannel, account: str | None) -> bool:
        """Whether *account* is the founder or one of the operators."""
        if account is None:
            return False
        folded = casefold(account)
        return folded == casefold(record.founder) or any(
            folded == casefold(op) for op in record.operators
        )

    def joined(self, conn: ChatProtocol, channel: Channel) -> None:
        """Give ``+o`` to the founder and operators of a registered channel."""
        record = self.registered.get(channel.folded)
        if record is None or not self.is_operator(record, conn.account):
            return
        if conn not in channel.members or not channel.set_member_mode(conn, "o", True):
            return
        relay = self.server.relay(
            Message("MODE", (channel.name, "+o", conn.nick), self.hostmask)
        )
        self.server.router.publish(relay, Audience.channel(channel))

    def changed(self, channel: Channel) -> None:
        """Persist the topic and modes of *channel* if it is registered."""
        record = self.registered.get(channel.folded)
        if record is None:
            return
        updated = snapshot(channel, record)
        if updated != record:
            self._save(updated)

    def _save(self, record: RegisteredChannel) -> Deferred[bool]:
        self.registered[record.folded] = record
        saving = self.server.accounts.store.update_channel(record)

        def saved(changed: bool) -> bool:
            self._shared(record.folded)
            return changed

        saving.addCallbacks(saved, self._error, errbackArgs=(record.name,))
        return saving

    @staticmethod
    def _error(failure: Failure, name: str) -> bool:
        log_store_failure(log, "Could not save channel {name}", failure, name=name)
        return False

    def account_dropped(self, name: str) -> None:
        """Forget what account *name* had (the store deleted it already)."""
        folded = casefold(name)
        for key, record in list(self.registered.items()):
            if casefold(record.founder) == folded:
                del self.registered[key]
            elif any(casefold(op) == folded for op in record.operators):
                self.registered[key] = dataclasses.replace(
                    record,
                    operators=tuple(
                        op for op in record.operators if casefold(op) != folded
                    ),
                )
            else:
                continue
            self._shared(key)

    # -- commands -------------------------------------------------------

    def _record(self, conn: ChatProtocol, args: list[str]) -> RegisteredChannel | None:
        """The registered channel named by *args*, or None after saying why."""
        record = self.registered.get(casefold(args[0])) if args else None
        if record is None:
            self.notice(conn, f"{args[0] if args else 'That'} is not registered")
        return record

    def _founder(self, conn: ChatProtocol, record: RegisteredChannel) -> bool:
        if conn.account is not None and casefold(conn.account) == casefold(
            record.founder
        ):
            return True
        if "o" in conn.modes:
            return True
        self.notice(conn, f"You are not the founder of {record.name}")
        return False

    def register(self, conn: ChatProtocol, args: list[str]) -> None:
        if len(args) != 1:
            self.notice(conn, self.help["REGISTER"])
            return
        if conn.account is None:
            self.notice(conn, "Log in to an account first (/msg NickServ HELP)")
            return
        channel = self.server.find_channel(args[0])
        if channel is None or not channel.is_operator(conn):
            self.notice(conn, f"You must be an operator of {args[0]} to register it")
            return
        if channel.folded in self.registered:
            self.notice(conn, f"{channel.name} is already registered")
            return
        record = snapshot(
            channel,
            RegisteredChannel(channel.name, conn.account, self.server.clock.seconds()),
        )
        later = Later(conn)

        def done(_: None) -> None:
            self.registered[record.folded] = record
            self._shared(record.folded)
            later.run(
                lambda: self.notice(
                    conn, f"{record.name} is registered to {record.founder}"
                )
            )

        def exists(failure: Failure) -> None:
            failure.trap(ChannelExistsError)
            later.run(lambda: self.notice(conn, f"{record.name} is already registered"))

        registering = self.server.accounts.store.register_channel(record)
        registering.addCallbacks(done, exists)
        later.watch(registering, lambda: self.notice(conn, _UNAVAILABLE))

    def info(self, conn: ChatProtocol, args: list[str]) -> None:
        record = self._record(conn, args)
        if record is None:
            return
        self.notice(conn, f"{record.name}: founder {record.founder}")
        if record.operators:
            self.notice(conn, f"Operators: {' '.join(record.operators)}")
        if record.topic:
            self.notice(conn, f"Topic: {record.topic}")

    def _set_operator(self, conn: ChatProtocol, args: list[str], on: bool) -> None:
        if len(args) != 2:
            self.notice(conn, self.help["OP" if on else "DEOP"])
            return
        record = self._record(conn, args)
        if record is None or not self._founder(conn, record):
            return
        account = args[1]
        others = tuple(
            op for op in record.operators if casefold(op) != casefold(account)
        )
        later = Later(conn)
        if not on:
            saving = self._save(dataclasses.replace(record, operators=others))
            saving.addCallback(
                lambda _: later.run(
                    lambda: self.notice(conn, f"{account} removed from {record.name}")
                )
            )
            return

        def found(known: Account | None) -> None:
            if known is None:
                later.run(lambda: self.notice(conn, f"{account} is not registered"))
                return
            name = known.name
            updated = dataclasses.replace(record, operators=(*others, name))
            self._save(updated).addCallback(
                lambda _: later.run(
                    lambda: self.notice(conn, f"{name} is an operator of {record.name}")
                )
            )

        looking = self.server.accounts.store.get_account(account)
        looking.addCallback(found)
        later.watch(looking, lambda: self.notice(conn, _UNAVAILABLE))

    def op(self, conn: ChatProtocol, args: list[str]) -> None:
        self._set_operator(conn, args, True)

    def deop(self, conn: ChatProtocol, args: list[str]) -> None:
        self._set_operator(conn, args, False)

    def drop(self, conn: ChatProtocol, args: list[str]) -> None:
        if len(args) != 1:
            self.notice(conn, self.help["DROP"])
            return
        record = self._record(conn, args)
        if record is None or not self._founder(conn, record):
            return
        self.registered.pop(record.folded, None)
        later = Later(conn)
        dropping = self.server.accounts.store.drop_channel(record.name)

        def dropped(_: bool) -> None:
            self._shared(record.folded)
            later.run(
                lambda: self.notice(conn, f"{record.name} is no longer registered")
            )

        dropping.addCallback(dropped)
        later.watch(dropping, lambda: self.notice(conn, _UNAVAILABLE))
