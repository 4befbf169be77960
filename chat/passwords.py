"""Password hashing with scrypt, a memory-hard KDF from the standard library.

Hashes are self-describing strings ``scrypt$N$r$p$salt$hash`` (salt and hash
in base64), so the cost can be raised later without breaking old hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

SCHEME = "scrypt"
#: 2**15 * 8 * 128 bytes = 32 MiB of memory per hash.
DEFAULT_N = 2**15
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=2 * 128 * n * r * p,
        dklen=HASH_BYTES,
    )


def hash_password(
    password: str, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P
) -> str:
    """Hash *password* with a fresh random salt."""
    salt = os.urandom(SALT_BYTES)
    digest = _derive(password, salt, n, r, p)
    return f"{SCHEME}${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Check *password* against a hash from `hash_password`, in constant time.

    A malformed hash never matches.
    """
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != SCHEME:
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = _derive(
            password, base64.b64decode(salt, validate=True), int(n), int(r), int(p)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def main() -> None:
    """``python -m chat.passwords``: print the hash of a password read from stdin."""
    import getpass
    import sys

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise SystemExit("no password given")
    print(hash_password(password))


if __name__ == "__main__":
    main()
