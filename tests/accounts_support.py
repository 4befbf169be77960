"""Helpers for account tests: cheap password hashing and a SCRAM client."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred

from chat.accounts import Accounts, PasswordCost
from chat.storage.sqlite import SQLiteStore
from tests.support import FakeClient, Harness

#: Cheap work factors: tests only, never in production.
TEST_COST = PasswordCost(scrypt_n=16, scram_iterations=16)
PASSWORD = "correct-horse"


def inline(work: Callable[..., Any], *args: Any) -> Deferred[Any]:
    """A worker that runs *work* at once, for synchronous protocol tests."""
    return maybeDeferred(work, *args)


def account_harness(**overrides: Any) -> Harness:
    """A `Harness` whose accounts live in memory and hash cheaply at once."""
    harness = Harness(**overrides)
    harness.server.accounts = Accounts(
        SQLiteStore(":memory:"), harness.clock, TEST_COST, worker=inline
    )
    return harness


def make_account(harness: Harness, name: str, password: str = PASSWORD) -> None:
    """Register *name* directly (the inline store fires at once)."""
    done: list[object] = []
    harness.server.accounts.register(name, password).addBoth(done.append)
    assert done and not isinstance(done[0], Exception), done


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sasl_connect(harness: Harness, nick: str = "alice") -> FakeClient:
    """A client that requested the ``sasl`` capability and sent NICK/USER."""
    client = harness.connect()
    client.send("CAP LS 302", "CAP REQ sasl", f"NICK {nick}", f"USER {nick} 0 * :R")
    client.raw()
    return client


def plain(account: str, password: str, authzid: str = "") -> str:
    """A PLAIN response, base64-encoded."""
    return b64(f"{authzid}\0{account}\0{password}".encode())


class ScramClient:
    """The client side of SCRAM-SHA-256, written from RFC 5802 and RFC 7677."""

    def __init__(self, user: str, password: str, nonce: str | None = None) -> None:
        self.user = user
        self.password = password
        self.nonce = nonce or b64(os.urandom(18))
        self.bare = f"n={user},r={self.nonce}"
        self.server_signature = b""

    def first(self) -> bytes:
        return f"n,,{self.bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        text = server_first.decode()
        attributes = dict(item.split("=", 1) for item in text.split(","))
        nonce, salt, iterations = attributes["r"], attributes["s"], attributes["i"]
        assert nonce.startswith(self.nonce), (nonce, self.nonce)
        salted = hashlib.pbkdf2_hmac(
            "sha256", self.password.encode(), base64.b64decode(salt), int(iterations)
        )
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={nonce}"
        auth = f"{self.bare},{text},{without_proof}".encode()
        signature = hmac.digest(stored_key, auth, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        self.server_signature = hmac.digest(server_key, auth, "sha256")
        return f"{without_proof},p={b64(proof)}".encode()

    def verified(self, server_final: bytes) -> bool:
        return server_final == f"v={b64(self.server_signature)}".encode()
