"""Accounts: registration, password checks, throttling, logging in.

`Accounts` is the account logic the commands use (SASL, REGISTER,
NickServ): it hashes passwords with scrypt (`chat.passwords`) and derives
the SCRAM-SHA-256 keys on a worker thread, never on the reactor thread,
checks passwords in constant time and throttles failed logins per account
and per address on the injected clock (`LoginLimits`: this server's own, or
in a cluster the network's, `chat.cluster.counters.SharedLogins`).

`log_in` and `log_out` are the only places that change ``conn.account``
(``str | None``, the account name as registered): IRCv3 code reads that
attribute and is told of changes through `chat.commands.ircv3`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThread

from chat import events, numerics, passwords
from chat.casemap import casefold
from chat.config import AccountSettings
from chat.identity import account_changed
from chat.limits import is_exempt
from chat.message import Message
from chat.storage import Account, ScramCredentials, Store

if TYPE_CHECKING:
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

#: The ``[accounts]`` settings of a server configured with none.
DEFAULT_SETTINGS = AccountSettings()

#: Bytes of random salt of new SCRAM credentials.
SCRAM_SALT_BYTES = 16
#: Throttles forget idle keys once they hold this many.
THROTTLE_SWEEP_AT = 10000

#: Runs a blocking function away from the reactor thread.
Worker = Callable[..., "Deferred[Any]"]


@dataclass(frozen=True, slots=True)
class PasswordCost:
    """Work factors of new password hashes.  Tests lower them; never do so
    in production."""

    #: scrypt N (2**15: ~50 ms and 32 MiB per hash).
    scrypt_n: int = passwords.DEFAULT_N
    #: PBKDF2 iterations of the SCRAM-SHA-256 keys (RFC 7677: at least 4096).
    scram_iterations: int = 4096


class LoginThrottledError(Exception):
    """Too many failed logins for this account or from this address."""


class Throttle:
    """Failures per key in a sliding window on the injected clock."""

    def __init__(self, clock: IReactorTime, max_failures: int, window: float) -> None:
        self.clock = clock
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        oldest = self.clock.seconds() - self.window
        while failures and failures[0] <= oldest:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def blocked(self, key: str) -> bool:
        """Whether *key* had `max_failures` failures within the window."""
        failures = self._recent(key)
        return failures is not None and len(failures) >= self.max_failures

    def count(self, key: str) -> None:
        """Count one event (a failure) of *key* now."""
        failures = self._recent(key)
        if failures is None:
            if len(self._failures) >= THROTTLE_SWEEP_AT:
                for old in list(self._failures):
                    self._recent(old)
            failures = self._failures[key] = deque(maxlen=self.max_failures)
        failures.append(self.clock.seconds())

    def clear(self, key: str) -> None:
        """Forget the failures of *key* (after a success)."""
        self._failures.pop(key, None)


class LoginLimits(Protocol):
    """Failed logins per account (folded name) and per address."""

    def blocked(self, account: str, address: str) -> Deferred[bool]:
        """Whether logins to *account* or from *address* are refused now."""

    def record(self, account: str, address: str, success: bool) -> None:
        """Count a login attempt: a success clears the account's failures."""


class LocalLoginLimits:
    """`LoginLimits` of this server alone: *max_failures* per account, twice
    that per address, within *window* seconds."""

    def __init__(self, clock: IReactorTime, max_failures: int, window: float) -> None:
        self.by_account = Throttle(clock, max_failures, window)
        self.by_address = Throttle(clock, 2 * max_failures, window)

    def blocked(self, account: str, address: str) -> Deferred[bool]:
        return succeed(
            self.by_account.blocked(account) or self.by_address.blocked(address)
        )

    def record(self, account: str, address: str, success: bool) -> None:
        if success:
            self.by_account.clear(account)
        else:
            self.by_account.count(account)
            self.by_address.count(address)


def scram_credentials(
    password: str, iterations: int, salt: bytes | None = None
) -> ScramCredentials:
    """The SCRAM-SHA-256 keys of *password* (RFC 5802 section 3, RFC 7677)."""
    salt = os.urandom(SCRAM_SALT_BYTES) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    return ScramCredentials(
        salt=salt,
        iterations=iterations,
        stored_key=hashlib.sha256(client_key).digest(),
        server_key=hmac.digest(salted, b"Server Key", "sha256"),
    )


class Accounts:
    """Account logic on a `Store`; see the module docstring."""

    def __init__(
        self,
        store: Store,
        clock: IReactorTime,
        cost: PasswordCost | None = None,
        worker: Worker = deferToThread,
        max_failures: int = 5,
        failure_window: float = 60.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.cost = cost or PasswordCost()
        self.worker = worker
        self.max_failures = max_failures
        self.failure_window = failure_window
        #: Failed logins by account; addresses get twice the allowance.
        self.logins: LoginLimits = LocalLoginLimits(clock, max_failures, failure_window)
        #: New accounts per address.
        self.registrations = Throttle(clock, 3, 3600.0)
        self._dummy_hash: str | None = None

    # -- credentials (worker thread) -----------------------------------

    def _credentials(self, password: str) -> tuple[str, ScramCredentials]:
        hashed = passwords.hash_password(password, n=self.cost.scrypt_n)
        return hashed, scram_credentials(password, self.cost.scram_iterations)

    def _verify(self, account: Account | None, password: str) -> bool:
        """Check *password*; without an account, spend the same time failing."""
        if account is None:
            if self._dummy_hash is None:
                self._dummy_hash = passwords.hash_password("", n=self.cost.scrypt_n)
            passwords.verify_password(password, self._dummy_hash)
            return False
        return passwords.verify_password(password, account.password_hash)

    # -- the reactor thread --------------------------------------------

    def register(
        self, name: str, password: str, email: str | None = None
    ) -> Deferred[Account]:
        """Create account *name*; fails with `AccountExistsError` if taken."""
        hashing: Deferred[tuple[str, ScramCredentials]] = self.worker(
            self._credentials, password
        )

        def store(credentials: tuple[str, ScramCredentials]) -> Deferred[Account]:
            hashed, scram = credentials
            account = Account(
                name=name,
                password_hash=hashed,
                scram=scram,
                email=email,
                created=self.clock.seconds(),
            )
            return self.store.create_account(account).addCallback(lambda _: account)

        return hashing.addCallback(store)

    def may_register(self, address: str) -> bool:
        """Whether *address* may register an account now; counts one if so."""
        if self.registrations.blocked(address):
            return False
        self.registrations.count(address)
        return True

    def throttled(self, name: str, address: str) -> Deferred[bool]:
        """Whether logins to *name* or from *address* are refused for now
        (fails with `StoreUnavailableError` when that cannot be known)."""
        return self.logins.blocked(casefold(name), address)

    def record(self, name: str, address: str, success: bool) -> None:
        """Count a login attempt for the throttles."""
        self.logins.record(casefold(name), address, success)

    def authenticate(
        self, name: str, password: str, address: str
    ) -> Deferred[Account | None]:
        """The account if *password* is right, else None.

        Fails with `LoginThrottledError` while throttled; failures count.
        """

        def unless_throttled(blocked: bool) -> Deferred[Account | None]:
            if blocked:
                return fail(LoginThrottledError(name))
            return self.store.get_account(name).addCallback(check)

        def check(account: Account | None) -> Deferred[Account | None]:
            checking: Deferred[bool] = self.worker(self._verify, account, password)

            def result(ok: bool) -> Account | None:
                self.record(name, address, ok)
                return account if ok else None

            return checking.addCallback(result)

        return self.throttled(name, address).addCallback(unless_throttled)

    def set_password(self, name: str, password: str) -> Deferred[bool]:
        """Replace the password of *name*; False if there is no such account."""
        hashing: Deferred[tuple[str, ScramCredentials]] = self.worker(
            self._credentials, password
        )
        return hashing.addCallback(
            lambda credentials: self.store.set_password(name, *credentials)
        )


def use_store(
    server: ChatServer, store: Store, cost: PasswordCost | None = None
) -> Deferred[None]:
    """Keep *server*'s accounts and registered channels in *store*; fires
    once the registered channels are loaded."""
    server.accounts = Accounts(store, server.clock, cost)
    return server.services.load()


def password_problem(
    password: str, settings: AccountSettings = DEFAULT_SETTINGS
) -> str | None:
    """Why *password* is not acceptable for a new account, or None."""
    if len(password) < settings.min_password_length:
        return (
            f"Passwords must be at least {settings.min_password_length} characters long"
        )
    if len(password) > settings.max_password_length:
        return (
            f"Passwords must be at most {settings.max_password_length} characters long"
        )
    return None


def registration_cap_value(settings: AccountSettings) -> str:
    """The CAP 302 value of ``draft/account-registration`` under *settings*."""
    flags = ["before-connect"] if settings.registration_before_connect else []
    flags.append("custom-account-name")
    if settings.email_required:
        flags.append("email-required")
    return ",".join(flags)


def registration_allowed(conn: ChatProtocol, server: ChatServer) -> Deferred[bool]:
    """Whether *conn* may register an account now (per-address limit, the
    network's: `chat.network.SharedState.may_register`); fails with
    `StoreUnavailableError` when that cannot be known now."""
    if is_exempt(conn.address, server.config.limits.exempt):
        return succeed(True)
    return server.shared.may_register(conn.address)


def log_in(
    conn: ChatProtocol, server: ChatServer, account: Account, method: str
) -> None:
    """Log *conn* in to *account* with *method* (``SASL PLAIN``, ``NickServ
    IDENTIFY``...): 900, account-notify (when the account is another one
    than before: SASL re-authentication), ``+o`` for operators, channel
    ``+o`` where the account is a registered operator, and the log line."""
    changed = conn.account != account.name
    conn.account = account.name
    events.logged_in(conn, account.name, method)
    server.load_read_markers(account.name)
    conn.reply(
        numerics.RPL_LOGGEDIN,
        conn.hostmask,
        account.name,
        f"You are now logged in as {account.name}",
    )
    if account.operator and server.set_user_mode(conn, "o", True) and conn.registered:
        conn.reply(numerics.RPL_YOUREOPER, "You are now an IRC operator")
        conn.send(Message("MODE", (conn.nick, "+o"), conn.hostmask))
    if changed:
        _account_changed(conn, server)
    for channel in list(conn.channels.values()):
        server.services.joined(conn, channel)


def log_out(conn: ChatProtocol, server: ChatServer) -> None:
    """Log *conn* out of its account (901) and tell who wants to know."""
    if conn.account is None:
        return
    conn.account = None
    conn.reply(numerics.RPL_LOGGEDOUT, conn.hostmask, "You are now logged out")
    _account_changed(conn, server)


def _account_changed(conn: ChatProtocol, server: ChatServer) -> None:
    if conn.registered:
        account_changed(server, conn)
