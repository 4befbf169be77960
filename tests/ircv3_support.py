"""Helpers for the IRCv3 tests: clients with capabilities."""

from __future__ import annotations

from tests.support import FakeClient, Harness


def with_caps(client: FakeClient, *caps: str) -> FakeClient:
    """Enable *caps* on a registered *client*; output cleared."""
    client.send(f"CAP REQ :{' '.join(caps)}")
    lines = client.lines()
    assert lines and " ACK " in lines[-1], lines
    return client


def registered(harness: Harness, nick: str, *caps: str) -> FakeClient:
    """A registered client with *caps* enabled."""
    return with_caps(harness.register(nick), *caps) if caps else harness.register(nick)
