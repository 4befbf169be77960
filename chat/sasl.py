"""SASL mechanisms: PLAIN, EXTERNAL and SCRAM-SHA-256 (RFC 4616, 4422, 7677).

A mechanism is a small state machine: `Mechanism.step` takes one client
response (already joined from its AUTHENTICATE chunks and base64-decoded)
and answers, through a Deferred, with a `Challenge` to send, a `Success`
or `Failed`.  Nothing here knows about IRC lines: the AUTHENTICATE
command (`chat.commands.accounts`) does the framing and the numerics.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from OpenSSL import crypto
from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from chat import numerics
from chat.accounts import Accounts, LoginThrottledError
from chat.casemap import casefold
from chat.storage import Account, StoreUnavailableError

if TYPE_CHECKING:
    from chat.protocol import ChatProtocol

#: Mechanism names in the order advertised (CAP ``sasl=`` and 908).
MECHANISMS = ("PLAIN", "EXTERNAL", "SCRAM-SHA-256")
#: Bytes of server nonce in SCRAM.
SCRAM_NONCE_BYTES = 18


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send *data* to the client and wait for its next response."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Success:
    """Authenticated as *account*."""

    account: Account


@dataclass(frozen=True, slots=True)
class Failed:
    """Authentication failed; *throttled* when refused without checking,
    *unavailable* when the account database could not be reached."""

    throttled: bool = False
    unavailable: bool = False


Step = Challenge | Success | Failed


class Mechanism:
    """One authentication exchange of one mechanism."""

    #: The mechanism's SASL name.
    name = ""
    #: The account name the client tried, once known (for the log).
    attempted: str | None = None

    def step(self, response: bytes) -> Deferred[Step]:
        """Handle the client's next *response*."""
        raise NotImplementedError


def _unavailable(failure: Failure) -> Step:
    """A store call that could not reach the database: try again later."""
    failure.trap(StoreUnavailableError)
    return Failed(unavailable=True)


def _logged(result: Deferred[Account | None]) -> Deferred[Step]:
    """Turn an `Accounts.authenticate` result into a `Step`."""

    def done(account: Account | None) -> Step:
        return Success(account) if account is not None else Failed()

    def refused(failure: Failure) -> Step:
        if failure.check(StoreUnavailableError):
            return _unavailable(failure)
        failure.trap(LoginThrottledError)
        return Failed(throttled=True)

    return result.addCallbacks(done, refused)


class Plain(Mechanism):
    """PLAIN (RFC 4616): ``authzid NUL authcid NUL password``."""

    name = "PLAIN"

    def __init__(self, accounts: Accounts, address: str) -> None:
        self.accounts = accounts
        self.address = address

    def step(self, response: bytes) -> Deferred[Step]:
        parts = response.split(b"\0")
        if len(parts) != 3:
            return succeed(Failed())
        try:
            authzid, authcid, password = (part.decode("utf-8") for part in parts)
        except UnicodeDecodeError:
            return succeed(Failed())
        self.attempted = authcid or None
        if not authcid or (authzid and casefold(authzid) != casefold(authcid)):
            return succeed(Failed())
        return _logged(self.accounts.authenticate(authcid, password, self.address))


def certificate_fingerprint(transport: object) -> str | None:
    """The SHA-256 fingerprint (lowercase hex) of the client's TLS
    certificate, or None without TLS or without a certificate."""
    get_certificate = getattr(transport, "getPeerCertificate", None)
    certificate = get_certificate() if get_certificate is not None else None
    if certificate is None:
        return None
    der = crypto.dump_certificate(crypto.FILETYPE_ASN1, certificate)
    return hashlib.sha256(der).hexdigest()


class External(Mechanism):
    """EXTERNAL (RFC 4422 appendix A): the TLS client certificate decides.

    The response is the authorization identity, empty or the account name.
    """

    name = "EXTERNAL"

    def __init__(self, accounts: Accounts, certfp: str | None) -> None:
        self.accounts = accounts
        self.certfp = certfp

    def step(self, response: bytes) -> Deferred[Step]:
        if self.certfp is None:
            return succeed(Failed())
        authzid = response.decode("utf-8", "replace")

        def check(account: Account | None) -> Step:
            if account is None or (authzid and casefold(authzid) != account.folded):
                return Failed()
            return Success(account)

        looking = self.accounts.store.account_for_certfp(self.certfp)
        return looking.addCallbacks(check, _unavailable)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _attributes(message: str) -> list[tuple[str, str]]:
    """``a=1,b=2`` as pairs; raises ValueError when malformed."""
    pairs = []
    for item in message.split(","):
        key, sep, value = item.partition("=")
        if not sep or len(key) != 1:
            raise ValueError(item)
        pairs.append((key, value))
    return pairs


def _unescape_name(name: str) -> str:
    """A SCRAM username: ``=2C`` is a comma and ``=3D`` an equals sign."""
    if "=" in name.replace("=2C", "").replace("=3D", ""):
        raise ValueError(name)
    return name.replace("=2C", ",").replace("=3D", "=")


class ScramSha256(Mechanism):
    """SCRAM-SHA-256 without channel binding (RFC 5802, RFC 7677).

    An unknown account gets a challenge with a salt derived from its name,
    exactly like a known one, so the exchange does not tell who exists.
    """

    name = "SCRAM-SHA-256"

    #: A per-process secret for the salts of accounts that do not exist.
    _fake_salt_key = os.urandom(32)

    def __init__(
        self, accounts: Accounts, address: str, server_nonce: str | None = None
    ) -> None:
        self.accounts = accounts
        self.address = address
        self._server_nonce = server_nonce or _b64(os.urandom(SCRAM_NONCE_BYTES))
        self._state = self._client_first
        self._name = ""
        self._account: Account | None = None
        self._nonce = ""
        self._gs2_header = ""
        self._auth_message = ""

    def step(self, response: bytes) -> Deferred[Step]:
        try:
            return self._state(response.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, binascii.Error):
            return succeed(Failed())

    def _client_first(self, message: str) -> Deferred[Step]:
        flag, authzid, bare = message.split(",", 2)
        if flag not in ("n", "y") or (authzid and not authzid.startswith("a=")):
            # "p=...": channel binding, which this server does not offer.
            return succeed(Failed())
        attributes = _attributes(bare)
        if len(attributes) < 2 or attributes[0][0] != "n" or attributes[1][0] != "r":
            return succeed(Failed())
        if any(key == "m" for key, _ in attributes[2:]):
            return succeed(Failed())
        name = _unescape_name(attributes[0][1])
        self.attempted = name or None
        client_nonce = attributes[1][1]
        if not name or not client_nonce:
            return succeed(Failed())
        if authzid and casefold(_unescape_name(authzid[2:])) != casefold(name):
            return succeed(Failed())

        def unless_throttled(blocked: bool) -> Deferred[Step]:
            if blocked:
                return succeed(Failed(throttled=True))
            return self._challenge(name, flag, authzid, bare, client_nonce)

        checking = self.accounts.throttled(name, self.address)
        return checking.addCallbacks(unless_throttled, _unavailable)

    def _challenge(
        self, name: str, flag: str, authzid: str, bare: str, client_nonce: str
    ) -> Deferred[Step]:
        """The server-first message, once *name* is not throttled."""
        self._name = name
        self._gs2_header = f"{flag},{authzid},"
        self._nonce = client_nonce + self._server_nonce

        def challenge(account: Account | None) -> Step:
            self._account = account
            if account is not None and account.scram is not None:
                salt, iterations = account.scram.salt, account.scram.iterations
            else:
                salt = hmac.digest(
                    self._fake_salt_key, casefold(name).encode("utf-8"), "sha256"
                )[:16]
                iterations = self.accounts.cost.scram_iterations
            server_first = f"r={self._nonce},s={_b64(salt)},i={iterations}"
            self._auth_message = f"{bare},{server_first}"
            self._state = self._client_final
            return Challenge(server_first.encode("utf-8"))

        return self.accounts.store.get_account(name).addCallbacks(
            challenge, _unavailable
        )

    def _client_final(self, message: str) -> Deferred[Step]:
        attributes = _attributes(message)
        if len(attributes) < 3 or attributes[-1][0] != "p":
            return succeed(Failed())
        (c_key, binding), (r_key, nonce) = attributes[0], attributes[1]
        if (c_key, r_key) != ("c", "r"):
            return succeed(Failed())
        proof = base64.b64decode(attributes[-1][1], validate=True)
        without_proof = message[: message.rindex(",p=")]
        self._auth_message += "," + without_proof
        expected_binding = _b64(self._gs2_header.encode("utf-8"))
        account = self._account
        ok = (
            hmac.compare_digest(binding.encode(), expected_binding.encode())
            and hmac.compare_digest(nonce.encode(), self._nonce.encode())
            and account is not None
            and account.scram is not None
            and len(proof) == hashlib.sha256().digest_size
            and self._proof_matches(account, proof)
        )
        self.accounts.record(self._name, self.address, ok)
        if not ok or account is None or account.scram is None:
            return succeed(Failed())
        signature = hmac.digest(
            account.scram.server_key, self._auth_message.encode("utf-8"), "sha256"
        )
        self._state = self._acknowledged
        return succeed(Challenge(f"v={_b64(signature)}".encode("ascii")))

    def _proof_matches(self, account: Account, proof: bytes) -> bool:
        assert account.scram is not None
        signature = hmac.digest(
            account.scram.stored_key, self._auth_message.encode("utf-8"), "sha256"
        )
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        return hmac.compare_digest(
            hashlib.sha256(client_key).digest(), account.scram.stored_key
        )

    def _acknowledged(self, message: str) -> Deferred[Step]:
        """The client's empty answer to the server signature."""
        if message or self._account is None:
            return succeed(Failed())
        return succeed(Success(self._account))


def start(name: str, accounts: Accounts, conn: ChatProtocol) -> Mechanism | None:
    """A new exchange of mechanism *name* for *conn*, or None if unknown."""
    name = name.upper()
    if name == "PLAIN":
        return Plain(accounts, conn.address)
    if name == "EXTERNAL":
        return External(accounts, certificate_fingerprint(conn.transport))
    if name == "SCRAM-SHA-256":
        return ScramSha256(accounts, conn.address)
    return None


class Session:
    """A SASL exchange in progress on one connection.

    *buffer* collects the chunks of a response (400 bytes each, the last
    shorter or ``+``); *busy* is true while a response is being checked, and
    then registration waits for the outcome.  *discarding* is true once a
    response was refused as too long: its remaining chunks are dropped.
    """

    def __init__(self, mechanism: Mechanism) -> None:
        self.mechanism = mechanism
        self.buffer = bytearray()
        self.busy = False
        self.discarding = False


def abort(
    conn: ChatProtocol,
    numeric: str = numerics.ERR_SASLABORTED,
    text: str = "SASL authentication aborted",
) -> None:
    """End *conn*'s SASL exchange with *numeric* (906 by default)."""
    conn.sasl = None
    conn.reply(numeric, text)


def hold_registration(conn: ChatProtocol) -> bool:
    """Whether registration must wait for SASL.

    A response being checked holds registration until its outcome; an
    exchange waiting for the client is aborted (906), as IRCv3 asks.
    """
    session = conn.sasl
    if session is None:
        return False
    if session.busy:
        return True
    if session.discarding:
        conn.sasl = None  # already refused (904/905)
        return False
    abort(conn)
    return False
