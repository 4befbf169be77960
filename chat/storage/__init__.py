"""Accounts and registered channels: the storage interface.

`Store` is what the protocol code uses; every method returns a Deferred, so
an implementation may do its work on another thread or over the network.
`chat.storage.sqlite.SQLiteStore` keeps everything in ``chat.db`` under the
data directory, `chat.storage.postgres.PostgresStore` in a PostgreSQL
database; `chat.storage.factory` picks one from the configuration, and
nothing else names a backend.  A call that cannot reach the database fails
with `StoreUnavailableError`.  Names are compared case-insensitively (IRC
case mapping): implementations key them by `casefold`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat.casemap import casefold

__all__ = [
    "Account",
    "AccountDatabase",
    "AccountExistsError",
    "ChannelExistsError",
    "RegisteredChannel",
    "ScramCredentials",
    "Store",
    "StoreUnavailableError",
    "log_store_failure",
]


class AccountExistsError(Exception):
    """An account with that name (under case folding) is already registered."""


class ChannelExistsError(Exception):
    """That channel is already registered."""


class StoreUnavailableError(Exception):
    """The database cannot be reached now; the same call may work later."""


def log_store_failure(log: Logger, text: str, failure: Failure, **fields: Any) -> None:
    """Log a failed store call: one warning while the database is away (an
    outage fails every call: no traceback each time), else the traceback."""
    if failure.check(StoreUnavailableError):
        log.warn(text + ": {error}", error=failure.getErrorMessage(), **fields)
    else:
        log.failure(text, failure, **fields)


@dataclass(frozen=True, slots=True)
class ScramCredentials:
    """What SCRAM-SHA-256 (RFC 7677) keeps instead of the password."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


@dataclass(frozen=True, slots=True)
class Account:
    """A registered account; its name is also the nick it protects."""

    name: str
    password_hash: str
    scram: ScramCredentials | None = None
    email: str | None = None
    created: float = 0.0
    operator: bool = False
    #: SHA-256 fingerprints (lowercase hex) of TLS client certificates
    #: that log in to this account with SASL EXTERNAL.
    certfps: tuple[str, ...] = ()

    @property
    def folded(self) -> str:
        return casefold(self.name)


@dataclass(frozen=True, slots=True)
class RegisteredChannel:
    """A channel registered by its founder, and the state that persists."""

    name: str
    founder: str
    registered: float
    topic: str = ""
    topic_set_by: str = ""
    topic_set_at: int = 0
    #: Channel flags without parameters, such as ``nt``.
    modes: str = "nt"
    key: str | None = None
    limit: int | None = None
    #: Accounts, besides the founder, that get channel operator on join.
    operators: tuple[str, ...] = field(default=())

    @property
    def folded(self) -> str:
        return casefold(self.name)


class Store(Protocol):
    """Accounts and registered channels, kept across restarts."""

    def close(self) -> Deferred[None]:
        """Finish pending work and release the database."""

    # -- accounts -------------------------------------------------------

    def create_account(self, account: Account) -> Deferred[None]:
        """Add *account*; fails with `AccountExistsError` if the name is taken.

        The Deferred fires once the account is durably stored.
        """

    def get_account(self, name: str) -> Deferred[Account | None]:
        """The account called *name*, if any."""

    def account_for_certfp(self, certfp: str) -> Deferred[Account | None]:
        """The account a client certificate fingerprint belongs to."""

    def list_accounts(self) -> Deferred[list[Account]]:
        """Every account, by name."""

    def set_password(
        self, name: str, password_hash: str, scram: ScramCredentials | None
    ) -> Deferred[bool]:
        """Replace the credentials of *name*; False if there is no such account."""

    def set_operator(self, name: str, operator: bool) -> Deferred[bool]:
        """Make *name* an IRC operator, or not; False if no such account."""

    def add_certfp(self, name: str, certfp: str) -> Deferred[bool]:
        """Let *certfp* log in to *name*; False if no such account or taken."""

    def remove_certfp(self, name: str, certfp: str) -> Deferred[bool]:
        """Forget *certfp* for *name*; False if it was not there."""

    def delete_account(self, name: str) -> Deferred[bool]:
        """Delete *name* and the channels it founded; False if none."""

    # -- read markers (draft/read-marker) --------------------------------

    def read_markers(self, name: str) -> Deferred[dict[str, float]]:
        """The read markers of account *name*: folded target -> time."""

    def set_read_marker(self, name: str, target: str, time: float) -> Deferred[None]:
        """Keep *name*'s marker in folded *target* (forgotten with the account)."""

    # -- channels -------------------------------------------------------

    def register_channel(self, channel: RegisteredChannel) -> Deferred[None]:
        """Add *channel*; fails with `ChannelExistsError` if already registered."""

    def list_channels(self) -> Deferred[list[RegisteredChannel]]:
        """Every registered channel."""

    def update_channel(self, channel: RegisteredChannel) -> Deferred[bool]:
        """Replace the stored state of *channel*; False if not registered."""

    def drop_channel(self, name: str) -> Deferred[bool]:
        """Unregister *name*; False if it was not registered."""


class AccountDatabase(Protocol):
    """Accounts, synchronously: what the admin command line works on."""

    def close(self) -> None:
        """Release the database."""

    def create_account(self, account: Account) -> None:
        """Add *account*; raises `AccountExistsError` if the name is taken."""

    def get_account(self, name: str) -> Account | None:
        """The account called *name*, if any."""

    def list_accounts(self) -> list[Account]:
        """Every account, by name."""

    def set_password(
        self, name: str, password_hash: str, scram: ScramCredentials | None
    ) -> bool:
        """Replace the credentials of *name*; False if there is no such account."""

    def set_operator(self, name: str, operator: bool) -> bool:
        """Make *name* an IRC operator, or not; False if no such account."""

    def delete_account(self, name: str) -> bool:
        """Delete *name* and the channels it founded; False if none."""
