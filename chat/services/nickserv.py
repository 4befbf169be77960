"""NickServ: accounts by message, and protection of registered nicks.

``/msg NickServ REGISTER|IDENTIFY|INFO|SET PASSWORD|DROP|GHOST|CERT`` (or
``/NS ...``).  An account's name is the nick it protects: someone using it
without being logged in to it is asked to identify, and after the grace
period (``timeouts.nick_grace``) renamed to a guest nick, claimed from the
network like any NICK (in a cluster: network-wide).
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat import events
from chat.accounts import (
    LoginThrottledError,
    log_in,
    log_out,
    password_problem,
    registration_allowed,
)
from chat.casemap import casefold
from chat.identity import change_nick
from chat.network import NickUnavailableError
from chat.sasl import certificate_fingerprint
from chat.services import Later, ServiceBot, ServiceHandler
from chat.storage import Account, AccountExistsError, log_store_failure

if TYPE_CHECKING:
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

log = Logger()
#: Guest nicks tried, one after the other, before waiting a grace period more.
GUEST_TRIES = 5
_UNAVAILABLE = "The account service is unavailable; try again later"


def owns_nick(conn: ChatProtocol, nick: str) -> bool:
    """Whether *conn* is logged in to the account named *nick*."""
    return conn.account is not None and casefold(conn.account) == casefold(nick)


class NickProtection:
    """Rename users who keep a registered nick without logging in to it."""

    def __init__(self, nickserv: NickServ) -> None:
        self.nickserv = nickserv
        self.server = nickserv.server
        self._timers: dict[ChatProtocol, IDelayedCall] = {}

    def check(self, conn: ChatProtocol) -> None:
        """Start the grace period if registered *conn*'s nick is someone's
        account."""
        self.cancel(conn)
        nick = conn.nick
        if owns_nick(conn, nick):
            return
        looking = self.server.accounts.store.get_account(nick)

        def found(account: Account | None) -> None:
            if (
                account is None
                or conn.closing
                or casefold(conn.nick) != casefold(nick)
                or owns_nick(conn, nick)
                or conn in self._timers
            ):
                return
            grace = self.server.config.timeouts.nick_grace
            self.nickserv.notice(
                conn,
                f"The nick {account.name} is registered. Log in within "
                f"{grace:g} seconds (/msg NickServ IDENTIFY <password>) or "
                "you will be renamed.",
            )
            self._timers[conn] = self.server.clock.callLater(
                grace, self._expire, conn, nick
            )

        looking.addCallbacks(found, self._error)

    def _error(self, failure: Failure) -> None:
        log_store_failure(log, "Nick protection lookup failed", failure)

    def _expire(self, conn: ChatProtocol, nick: str, tries: int = GUEST_TRIES) -> None:
        self._timers.pop(conn, None)
        if not self._still_holds(conn, nick):
            return
        guest = self.guest_nick()
        claiming = self.server.network.claim_nick(conn, guest)
        claiming.addCallbacks(
            lambda won: self._claimed(conn, nick, guest, won, tries),
            lambda failure: self._unclaimed(conn, nick, failure),
        )
        claiming.addErrback(self._error)

    @staticmethod
    def _still_holds(conn: ChatProtocol, nick: str) -> bool:
        """Whether *conn* still uses registered *nick* without owning it."""
        return (
            not conn.closing
            and casefold(conn.nick) == casefold(nick)
            and not owns_nick(conn, nick)
        )

    def _claimed(
        self, conn: ChatProtocol, nick: str, guest: str, won: bool, tries: int
    ) -> None:
        if won and not self._still_holds(conn, nick):
            self.server.network.release_nick(conn, guest)
            return
        if not won or self.server.nick_in_use(guest, conn):
            # Someone on another node took it first: another one.
            if won:
                self.server.network.release_nick(conn, guest)
            if tries > 1:
                self._expire(conn, nick, tries - 1)
            else:
                self._again(conn, nick)
            return
        self.nickserv.notice(conn, f"You did not log in to {nick}: you are now {guest}")
        change_nick(conn, self.server, guest)

    def _unclaimed(self, conn: ChatProtocol, nick: str, failure: Failure) -> None:
        """No guest nick can be claimed now (the network is unreachable)."""
        failure.trap(NickUnavailableError)
        self._again(conn, nick)

    def _again(self, conn: ChatProtocol, nick: str) -> None:
        """Try renaming *conn* again after another grace period."""
        if self._still_holds(conn, nick) and conn not in self._timers:
            grace = self.server.config.timeouts.nick_grace
            self._timers[conn] = self.server.clock.callLater(
                grace, self._expire, conn, nick
            )

    def guest_nick(self) -> str:
        """A free nick like ``Guest12345``."""
        while True:
            nick = f"Guest{random.randrange(10000, 100000)}"
            if self.server.nicks.get(casefold(nick)) is None:
                return nick

    def cancel(self, conn: ChatProtocol) -> None:
        """Stop the grace timer of *conn*, if any."""
        timer = self._timers.pop(conn, None)
        if timer is not None and timer.active():
            timer.cancel()


class NickServ(ServiceBot):
    """The account service."""

    nick = "NickServ"
    help = {
        "REGISTER": "REGISTER <password> [email]: register your current nick",
        "IDENTIFY": "IDENTIFY [account] <password>: log in",
        "INFO": "INFO [account]: show an account",
        "SET": "SET PASSWORD <new password>: change your password",
        "DROP": "DROP <password>: delete your account",
        "GHOST": "GHOST <nick> [password]: disconnect a client using your nick",
        "CERT": "CERT ADD [fingerprint] | DEL <fingerprint> | LIST: "
        "TLS client certificates for SASL EXTERNAL",
    }

    def __init__(self, server: ChatServer) -> None:
        super().__init__(server)
        self.protection = NickProtection(self)

    def handlers(self) -> dict[str, ServiceHandler]:
        return {
            "REGISTER": self.register,
            "IDENTIFY": self.identify,
            "INFO": self.info,
            "SET": self.set,
            "DROP": self.drop,
            "GHOST": self.ghost,
            "CERT": self.cert,
        }

    def _need_login(self, conn: ChatProtocol) -> bool:
        if conn.account is None:
            self.notice(conn, "You are not logged in")
            return True
        return False

    def register(self, conn: ChatProtocol, args: list[str]) -> None:
        if not args:
            self.notice(conn, self.help["REGISTER"])
            return
        if conn.account is not None:
            self.notice(conn, f"You are already logged in as {conn.account}")
            return
        password, email = args[0], (args[1] if len(args) > 1 else None)
        if email is not None and "@" not in email:
            self.notice(conn, f"{email} is not an e-mail address")
            return
        if email is None and self.server.config.accounts.email_required:
            self.notice(
                conn, "An e-mail address is required: REGISTER <password> <email>"
            )
            return
        problem = password_problem(password, self.server.config.accounts)
        if problem is not None:
            self.notice(conn, problem)
            return
        name = conn.nick
        accounts = self.server.accounts
        later = Later(conn)

        def done(account: Account) -> None:
            def write() -> None:
                self.notice(conn, f"Account {account.name} registered")
                if conn.account is None:
                    log_in(conn, self.server, account, "NickServ REGISTER")

            later.run(write)

        def exists(failure: Failure) -> None:
            failure.trap(AccountExistsError)
            later.run(lambda: self.notice(conn, f"{name} is already registered"))

        def create(allowed: bool) -> Deferred[None] | None:
            if not allowed:
                later.run(
                    lambda: self.notice(
                        conn, "Too many registrations from your address; wait"
                    )
                )
                return None
            registering = accounts.register(name, password, email)
            return registering.addCallbacks(done, exists)

        # The per-address limit is the network's: it may be counted elsewhere.
        creating = registration_allowed(conn, self.server).addCallback(create)
        later.watch(creating, lambda: self.notice(conn, _UNAVAILABLE))

    def identify(self, conn: ChatProtocol, args: list[str]) -> None:
        if not args or len(args) > 2:
            self.notice(conn, self.help["IDENTIFY"])
            return
        name, password = (args[0], args[1]) if len(args) == 2 else (conn.nick, args[0])
        if conn.account is not None:
            self.notice(conn, f"You are already logged in as {conn.account}")
            return
        later = Later(conn)

        def done(account: Account | None) -> None:
            def write() -> None:
                if account is None:
                    events.login_failed(conn, "NickServ IDENTIFY", name, "bad password")
                    self.notice(conn, "Invalid account or password")
                elif conn.account is None:
                    log_in(conn, self.server, account, "NickServ IDENTIFY")
                    self.notice(conn, f"You are now logged in as {account.name}")

            later.run(write)

        def throttled(failure: Failure) -> None:
            failure.trap(LoginThrottledError)
            events.login_failed(conn, "NickServ IDENTIFY", name, "throttled")
            later.run(lambda: self.notice(conn, "Too many failed logins; wait"))

        checking = self.server.accounts.authenticate(name, password, conn.address)
        checking.addCallbacks(done, throttled)
        later.watch(checking, lambda: self.notice(conn, _UNAVAILABLE))

    def info(self, conn: ChatProtocol, args: list[str]) -> None:
        name = args[0] if args else (conn.account or conn.nick)
        later = Later(conn)

        def show(account: Account | None) -> None:
            def write() -> None:
                if account is None:
                    self.notice(conn, f"{name} is not registered")
                    return
                created = time.strftime(
                    "%Y-%m-%d %H:%M:%S UTC", time.gmtime(account.created)
                )
                self.notice(conn, f"Account {account.name}, registered {created}")
                if account.operator:
                    self.notice(conn, f"{account.name} is an IRC operator")
                if owns_nick(conn, account.name):
                    self.notice(conn, f"E-mail: {account.email or '(none)'}")
                    for certfp in account.certfps:
                        self.notice(conn, f"Certificate: {certfp}")

            later.run(write)

        looking = self.server.accounts.store.get_account(name)
        looking.addCallback(show)
        later.watch(looking, lambda: self.notice(conn, _UNAVAILABLE))

    def set(self, conn: ChatProtocol, args: list[str]) -> None:
        if len(args) != 2 or args[0].upper() != "PASSWORD":
            self.notice(conn, self.help["SET"])
            return
        if self._need_login(conn):
            return
        assert conn.account is not None
        problem = password_problem(args[1], self.server.config.accounts)
        if problem is not None:
            self.notice(conn, problem)
            return
        later = Later(conn)
        changing = self.server.accounts.set_password(conn.account, args[1])
        changing.addCallback(
            lambda changed: later.run(
                lambda: self.notice(
                    conn,
                    "Password changed" if changed else "Your account no longer exists",
                )
            )
        )
        later.watch(changing, lambda: self.notice(conn, _UNAVAILABLE))

    def drop(self, conn: ChatProtocol, args: list[str]) -> None:
        if len(args) != 1:
            self.notice(conn, self.help["DROP"])
            return
        if self._need_login(conn):
            return
        name = conn.account
        assert name is not None
        accounts = self.server.accounts
        later = Later(conn)

        def checked(account: Account | None) -> object:
            if account is None:
                later.run(lambda: self.notice(conn, "Wrong password"))
                return None
            return accounts.store.delete_account(name).addCallback(dropped)

        def dropped(deleted: bool) -> None:
            def write() -> None:
                self.notice(conn, f"Account {name} dropped")
                self.server.services.chanserv.account_dropped(name)
                for user in list(self.server.connections):
                    if user.account is not None and casefold(user.account) == casefold(
                        name
                    ):
                        log_out(user, self.server)

            later.run(write)

        def throttled(failure: Failure) -> None:
            failure.trap(LoginThrottledError)
            later.run(lambda: self.notice(conn, "Too many failed logins; wait"))

        checking = accounts.authenticate(name, args[0], conn.address)
        checking.addCallbacks(checked, throttled)
        later.watch(checking, lambda: self.notice(conn, _UNAVAILABLE))

    def ghost(self, conn: ChatProtocol, args: list[str]) -> None:
        if not args or len(args) > 2:
            self.notice(conn, self.help["GHOST"])
            return
        nick = args[0]
        target = self.server.nicks.get(casefold(nick))
        if target is None or target is conn:
            self.notice(conn, f"{nick} is not online")
            return
        if len(args) == 1:
            if owns_nick(conn, nick):
                self._kill_ghost(conn, target)
            else:
                self.notice(conn, f"You are not logged in to {nick}")
            return
        later = Later(conn)

        def checked(account: Account | None) -> None:
            def write() -> None:
                if account is None:
                    self.notice(conn, "Invalid account or password")
                else:
                    self._kill_ghost(conn, target)

            later.run(write)

        def throttled(failure: Failure) -> None:
            failure.trap(LoginThrottledError)
            later.run(lambda: self.notice(conn, "Too many failed logins; wait"))

        checking = self.server.accounts.authenticate(nick, args[1], conn.address)
        checking.addCallbacks(checked, throttled)
        later.watch(checking, lambda: self.notice(conn, _UNAVAILABLE))

    def _kill_ghost(self, conn: ChatProtocol, target: ChatProtocol) -> None:
        nick = target.nick
        target.close(f"Ghosted by {conn.nick}")
        self.notice(conn, f"{nick} has been disconnected")

    def cert(self, conn: ChatProtocol, args: list[str]) -> None:
        action = args[0].upper() if args else ""
        if action not in ("ADD", "DEL", "LIST"):
            self.notice(conn, self.help["CERT"])
            return
        if self._need_login(conn):
            return
        name = conn.account
        assert name is not None
        store = self.server.accounts.store
        if action == "LIST":
            later = Later(conn)

            def show(account: Account | None) -> None:
                def write() -> None:
                    certfps = account.certfps if account else ()
                    for certfp in certfps:
                        self.notice(conn, f"Certificate: {certfp}")
                    self.notice(conn, f"{len(certfps)} certificate(s)")

                later.run(write)

            listing = store.get_account(name).addCallback(show)
            later.watch(listing, lambda: self.notice(conn, _UNAVAILABLE))
            return
        certfp = (
            args[1].lower().replace(":", "")
            if len(args) > 1
            else certificate_fingerprint(conn.transport)
        )
        if not certfp:
            self.notice(conn, "You have no TLS client certificate; give a fingerprint")
            return
        later = Later(conn)
        if action == "ADD":
            changing = store.add_certfp(name, certfp)
            ok, refused = f"Added {certfp}", "That certificate is already in use"
        else:
            changing = store.remove_certfp(name, certfp)
            ok, refused = f"Removed {certfp}", "That certificate is not on your account"
        changing.addCallback(
            lambda changed: later.run(
                lambda: self.notice(conn, ok if changed else refused)
            )
        )
        later.watch(changing, lambda: self.notice(conn, _UNAVAILABLE))
