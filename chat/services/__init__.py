"""Built-in services: NickServ and ChanServ, reached by PRIVMSG or NS/CS.

`Services` is the registry on the server (``server.services``): messages to
a service nick go to its bot instead of to a user, and nobody else may use
those nicks.  It also carries the hooks other code calls: nick protection
on registration and NICK, registered channels on create, join and change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat.casemap import casefold
from chat.message import Message
from chat.storage import log_store_failure

if TYPE_CHECKING:
    from chat.channel import Channel
    from chat.labeled import Response
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer
    from chat.services.chanserv import ChanServ
    from chat.services.nickserv import NickServ

log = Logger()

#: A service command handler: the user and the words after the command.
ServiceHandler = Callable[["ChatProtocol", list[str]], None]


class Later:
    """Replies to a command that arrive after its handler returned.

    Takes the command's response (`ChatProtocol.responder`) so that
    labeled-response still labels them; `run` writes and finishes it.
    """

    def __init__(self, conn: ChatProtocol) -> None:
        self.conn = conn
        self.response: Response = conn.responder()

    def run(self, write: Callable[[], None]) -> None:
        """Call *write*, which replies on the connection, then finish."""
        conn, response = self.conn, self.response
        if response.label is None or response.done:
            write()
        else:
            previous, conn.response = conn.response, response
            try:
                write()
            finally:
                conn.response = previous
        response.finish()

    def fail(self, failure: Failure, write: Callable[[], None]) -> None:
        """Log an unexpected *failure*, then reply with *write*."""
        log_store_failure(log, "Service call failed", failure)
        self.run(write)

    def watch(self, deferred: Deferred[Any], on_error: Callable[[], None]) -> None:
        """On an unexpected error in *deferred*, log it and reply *on_error*."""
        deferred.addErrback(self.fail, on_error)


class ServiceBot:
    """A service user: a nick, a table of commands, replies by NOTICE."""

    nick = "Service"
    #: A line of HELP per command.
    help: dict[str, str] = {}

    def __init__(self, server: ChatServer) -> None:
        self.server = server

    @property
    def hostmask(self) -> str:
        return f"{self.nick}!{self.nick}@{self.server.name}"

    def notice(self, conn: ChatProtocol, text: str) -> None:
        """Say *text* to *conn*, from this service."""
        conn.send(Message("NOTICE", (conn.nick, text), self.hostmask))

    def handlers(self) -> dict[str, ServiceHandler]:
        """Command name -> handler."""
        return {}

    def handle(self, conn: ChatProtocol, text: str) -> None:
        """Run the command in *text* (``COMMAND args...``) for *conn*."""
        words = text.split()
        if not words:
            self.notice(conn, f"Try /msg {self.nick} HELP")
            return
        name, args = words[0].upper(), words[1:]
        if name == "HELP":
            for line in self.help.values():
                self.notice(conn, line)
            return
        handler = self.handlers().get(name)
        if handler is None:
            self.notice(conn, f"Unknown command {name}. Try /msg {self.nick} HELP")
            return
        handler(conn, args)


class Services:
    """The service bots of one server and the hooks into its commands."""

    def __init__(self, server: ChatServer) -> None:
        # Imported here: the bots use command modules, which import this one.
        from chat.services.chanserv import ChanServ
        from chat.services.nickserv import NickServ

        self.server = server
        self.nickserv: NickServ = NickServ(server)
        self.chanserv: ChanServ = ChanServ(server)
        self.bots: dict[str, ServiceBot] = {
            casefold(bot.nick): bot for bot in (self.nickserv, self.chanserv)
        }

    def __contains__(self, nick: str) -> bool:
        """Whether *nick* belongs to a service."""
        return casefold(nick) in self.bots

    def find(self, nick: str) -> ServiceBot | None:
        """The service called *nick*, if any."""
        return self.bots.get(casefold(nick))

    def load(self) -> Deferred[None]:
        """Read what the services keep in the store (registered channels)."""
        return self.chanserv.load()

    # -- hooks ----------------------------------------------------------

    def nick_changed(self, conn: ChatProtocol) -> None:
        """*conn* registered or changed nick: protect registered nicks."""
        self.nickserv.protection.check(conn)

    def forget(self, conn: ChatProtocol) -> None:
        """*conn* is gone."""
        self.nickserv.protection.cancel(conn)

    def channel_created(self, channel: Channel) -> None:
        """*channel* was just created: restore its registered state."""
        self.chanserv.restore(channel)

    def joined(self, conn: ChatProtocol, channel: Channel) -> None:
        """*conn* joined *channel*: its founder and operators get ``+o``."""
        self.chanserv.joined(conn, channel)

    def channel_changed(self, channel: Channel) -> None:
        """The topic or modes of *channel* changed: persist if registered."""
        self.chanserv.changed(channel)
