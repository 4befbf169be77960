"""Interop: the ``irc`` package from PyPI talks to our server over TLS."""

from __future__ import annotations

import functools
import ssl
import time
from pathlib import Path

import irc.client
import irc.connection
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from tests.e2e_support import start_server

CHANNEL = "#interop"
#: Seconds the two clients get to finish their exchange.
DEADLINE = 15.0


def exchange(port: int, ca_file: Path) -> dict[str, list[tuple[str, str]]]:
    """Two ``irc`` clients join CHANNEL and greet each other; what each heard.

    Runs in a thread with the package's own blocking event loop.
    """
    context = ssl.create_default_context(cafile=str(ca_file))
    wrapper = functools.partial(context.wrap_socket, server_hostname="localhost")
    factory = irc.connection.Factory(wrapper=wrapper)
    loop = irc.client.Reactor()
    heard: dict[str, list[tuple[str, str]]] = {"alice": [], "bob": []}
    joined: set[str] = set()

    def on_welcome(conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        conn.join(CHANNEL)

    def on_endofnames(
        conn: irc.client.ServerConnection, event: irc.client.Event
    ) -> None:
        joined.add(conn.get_nickname())
        if joined == {"alice", "bob"}:
            clients["alice"].privmsg(CHANNEL, "hello bob")

    def on_pubmsg(conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        heard[conn.get_nickname()].append((event.source.nick, event.arguments[0]))
        if conn.get_nickname() == "bob":
            conn.privmsg(CHANNEL, "hello alice")

    loop.add_global_handler("welcome", on_welcome)
    loop.add_global_handler("endofnames", on_endofnames)
    loop.add_global_handler("pubmsg", on_pubmsg)
    clients = {
        nick: loop.server().connect("127.0.0.1", port, nick, connect_factory=factory)
        for nick in heard
    }
    deadline = time.monotonic() + DEADLINE
    try:
        while not heard["alice"] and time.monotonic() < deadline:
            loop.process_once(0.05)
    finally:
        loop.disconnect_all("bye")
    return heard


class IrcPackageTests(TestCase):
    async def test_two_irc_clients_join_and_talk_over_tls(self) -> None:
        server = start_server(self)
        heard = await deferToThread(exchange, server.tls_port, server.ca_file)
        self.assertEqual(heard["bob"], [("alice", "hello bob")])
        self.assertEqual(heard["alice"], [("bob", "hello alice")])
