"""End to end over real loopback sockets: TLS, many clients, plaintext."""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    connectProtocol,
    wrapClientTLS,
)
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.ssl import Certificate, PrivateCertificate, optionsForClientTLS
from twisted.internet.task import deferLater
from twisted.logger import LogLevel, capturedLogs, eventAsJSON, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from chat.config import Limits, ServerConfig
from chat.history.sqlite import FILENAME as HISTORY_FILE
from chat.history.sqlite import SQLiteHistory
from chat.passwords import hash_password
from chat.sasl import certificate_fingerprint
from chat.storage import Account, RegisteredChannel
from chat.storage.sqlite import SQLiteStore
from chat.tls import ensure_dev_certificate
from chat.transport import TLSFactory
from tests.e2e_support import (
    PLAIN_LOOPBACK,
    TIMEOUT,
    TLS_LOOPBACK,
    LineClient,
    RunningServer,
    Serving,
    connect_tls,
    is_command,
    reactor,
    start_server,
)

CLIENTS = 8


async def join_all(clients: list[LineClient], channel: str) -> None:
    """Every client joins *channel*; returns once each saw its end of NAMES."""
    for client in clients:
        client.send("JOIN", channel)
        await client.wait_for(lambda m: m.command == "366")
    for client in clients:
        await client.sync("joined")
        client.inbox.clear()


async def chat_round(clients: list[LineClient], nicks: list[str], channel: str) -> None:
    """Each client says one line; each must see every other line exactly once."""
    for nick, client in zip(nicks, clients, strict=True):
        client.send("PRIVMSG", channel, f"hello from {nick}")
    for nick, client in zip(nicks, clients, strict=True):
        others = [n for n in nicks if n != nick]
        for other in others:
            await client.wait_for(is_command("PRIVMSG", channel, f"hello from {other}"))
    for client in clients:
        await client.sync("done")
        extra = client.take(lambda m: m.command == "PRIVMSG")
        assert extra == [], f"duplicate or own messages: {extra}"


class ManyClientsTests(Serving, TestCase):
    async def test_eight_tls_clients_chat_in_one_channel(self) -> None:
        server = self.serve()
        nicks = [f"user{i}" for i in range(CLIENTS)]
        clients = [await server.client(nick) for nick in nicks]
        await join_all(clients, "#room")
        await chat_round(clients, nicks, "#room")
        self.assertEqual(server.service.server.registered_count, CLIENTS)

    async def test_plaintext_listener_joins_the_same_channel(self) -> None:
        server = start_server(self, TLS_LOOPBACK, PLAIN_LOOPBACK)
        tls = await server.client("secure")
        plain = await server.plain_client("plain")
        secure = {c.nick: c.secure for c in server.service.server.connections}
        self.assertEqual(secure, {"secure": True, "plain": False})
        await join_all([tls, plain], "#mixed")
        await chat_round([tls, plain], ["secure", "plain"], "#mixed")
        tls.send("NOTICE", "plain", "psst")
        notice = await plain.wait_for(is_command("NOTICE", "plain"))
        self.assertEqual(notice.params[1], "psst")

    async def test_only_listen_opens_only_that_listener(self) -> None:
        server = start_server(self, PLAIN_LOOPBACK)
        self.assertIsNone(server.service.tls_port())
        self.assertIsNone(server.service.tls)
        client = await server.plain_client("alone")
        await client.sync()


class ShutdownTests(TestCase):
    async def test_stop_sends_error_to_every_client_and_closes(self) -> None:
        server = start_server(self, TLS_LOOPBACK, PLAIN_LOOPBACK)
        clients = [await server.client("a"), await server.plain_client("b")]
        unregistered = await server.client()
        await server.service.stopService()
        for client in [*clients, unregistered]:
            error = await client.wait_for(is_command("ERROR"))
            self.assertIn("Server shutting down", error.params[0])
            await client.lost
        self.assertFalse(server.service.server.connections)


@implementer(IOpenSSLClientConnectionCreator)
class OldTLSClient:
    """A client context offering exactly one protocol version."""

    def __init__(self, version: int) -> None:
        self.context = SSL.Context(SSL.TLS_METHOD)
        self.context.set_min_proto_version(version)
        self.context.set_max_proto_version(version)
        # Allow the old protocol on the client side whatever the system policy.
        self.context.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
        self.context.set_verify(SSL.VERIFY_NONE, lambda *args: True)

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        connection = SSL.Connection(self.context, None)
        connection.set_connect_state()
        return connection


class Probe(Protocol):
    """Says PING so that the handshake happens; `done` fires on reply or close."""

    def __init__(self) -> None:
        self.reason: Failure | None = None
        self.data = b""
        self.done: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.transport.write(b"PING x\r\n")  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if not self.done.called:
            self.done.callback(None)
        self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.reason = reason
        if not self.done.called:
            self.done.callback(None)


async def handshake(server: RunningServer, version: int) -> Probe:
    """Connect offering only TLS *version*; the probe after reply or close."""
    probe = Probe()
    endpoint = wrapClientTLS(
        OldTLSClient(version),
        TCP4ClientEndpoint(reactor, "127.0.0.1", server.tls_port),
    )
    await connectProtocol(endpoint, probe)
    await probe.done.addTimeout(TIMEOUT, reactor)
    return probe


class TLSVersionTests(TestCase):
    async def test_tls_1_2_accepted(self) -> None:
        server = start_server(self)
        probe = await handshake(server, SSL.TLS1_2_VERSION)
        self.assertIn(b"PONG", probe.data)

    async def test_tls_1_1_rejected(self) -> None:
        server = start_server(self)
        probe = await handshake(server, SSL.TLS1_1_VERSION)
        self.assertEqual(probe.data, b"")
        assert probe.reason is not None
        self.assertTrue(probe.reason.check(SSL.Error), probe.reason)
        # The server refused the version: not a failure on the client side.
        self.assertIn("protocol version", str(probe.reason.value))
        factories = [f for f in server.service.factories if isinstance(f, TLSFactory)]
        self.assertEqual(factories[0].handshake_failures, 1)


def served_certificate(client: LineClient) -> x509.Certificate:
    """The certificate the server presented to *client*."""
    peer = client.transport.getPeerCertificate()  # type: ignore[union-attr]
    return peer.to_cryptography()  # type: ignore[no-any-return]


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


class ReloadTests(TestCase):
    async def test_sighup_swaps_the_certificate_and_keeps_clients(self) -> None:
        first = ensure_dev_certificate(Path(self.mktemp()))
        second = ensure_dev_certificate(Path(self.mktemp()))
        live = Path(self.mktemp())
        live.mkdir()
        cert, key = live / "cert.pem", live / "key.pem"
        shutil.copy(first.cert, cert)
        shutil.copy(first.key, key)
        server = start_server(self, handle_signals=True, cert=cert, key=key)
        old = server.track(await connect_tls(server.tls_port, first.ca))
        await old.register("old")
        old.send("JOIN", "#reload")
        await old.wait_for(is_command("366"))

        shutil.copy(second.cert, cert)
        shutil.copy(second.key, key)
        with capturedLogs() as events:
            os.kill(os.getpid(), signal.SIGHUP)
            await deferLater(reactor, 0, lambda: None)
        self.assertIn("Configuration reloaded", [e["log_format"] for e in events])

        new = server.track(await connect_tls(server.tls_port, second.ca))
        await new.register("new")
        self.assertEqual(served_certificate(new), load_cert(second.cert))
        self.assertEqual(served_certificate(old), load_cert(first.cert))
        new.send("JOIN", "#reload")
        await new.wait_for(is_command("366"))
        new.send("PRIVMSG", "#reload", "still there?")
        await old.wait_for(is_command("PRIVMSG", "#reload", "still there?"))

    async def test_bad_certificate_on_reload_keeps_the_old(self) -> None:
        dev = ensure_dev_certificate(Path(self.mktemp()))
        live = Path(self.mktemp())
        live.mkdir()
        cert, key = live / "cert.pem", live / "key.pem"
        shutil.copy(dev.cert, cert)
        shutil.copy(dev.key, key)
        server = start_server(self, cert=cert, key=key)
        cert.write_text("not a certificate")
        with capturedLogs() as events:
            self.assertFalse(server.service.reload())
        [event] = [e for e in events if e["log_level"] == LogLevel.error]
        self.assertIn("Reload rejected", event["log_format"])
        self.assertIn(str(cert), event["error"])
        client = server.track(await connect_tls(server.tls_port, dev.ca))
        await client.register("fine")


class LogSecrecyTests(TestCase):
    async def test_no_password_or_message_body_in_the_logs(self) -> None:
        secrets = ["sekrit-pass", "oper-pass-42", "wrong-pass-7", "body-text-99"]
        config = ServerConfig(
            server_name="irc.test",
            password=secrets[0],
            operators={"root": hash_password(secrets[1], n=2**10)},
        )
        with capturedLogs() as events:
            server = start_server(self, config=config)
            intruder = server.track(await connect_tls(server.tls_port, server.ca_file))
            intruder.send("PASS", secrets[2])
            intruder.send("NICK", "intruder")
            intruder.send("USER", "i", "0", "*", "I")
            await intruder.wait_for(is_command("ERROR"))
            clients = []
            for nick in ("oper", "peer"):
                client = server.track(
                    await connect_tls(server.tls_port, server.ca_file)
                )
                client.send("PASS", secrets[0])
                await client.register(nick)
                client.send("JOIN", "#secret")
                await client.wait_for(is_command("366"))
                clients.append(client)
            clients[0].send("OPER", "root", secrets[1])
            await clients[0].wait_for(is_command("381"))
            clients[0].send("PRIVMSG", "#secret", secrets[3])
            await clients[1].wait_for(is_command("PRIVMSG", "#secret", secrets[3]))
            await server.stop()
        self.assertTrue(events)
        for event in events:
            text = eventAsJSON(event) + (formatEvent(event) or "")
            for secret in secrets:
                self.assertNotIn(secret, text)


class StorageTests(TestCase):
    async def test_stop_writes_the_pending_history(self) -> None:
        data_dir = Path(self.mktemp())
        server = start_server(self, data_dir=data_dir)
        sender, receiver = await server.client("sender"), await server.client("rcpt")
        sender.send("PRIVMSG", "rcpt", "remember me")
        await receiver.wait_for(is_command("PRIVMSG", "rcpt", "remember me"))
        await server.stop()
        with closing(sqlite3.connect(data_dir / HISTORY_FILE)) as db:
            rows = db.execute("SELECT params FROM history").fetchall()
        self.assertEqual(len(rows), 1)
        self.assertIn("remember me", rows[0][0])

    async def test_accounts_survive_a_restart(self) -> None:
        data_dir = Path(self.mktemp())
        server = start_server(self, data_dir=data_dir)
        self.assertIsInstance(server.service.server.accounts.store, SQLiteStore)
        account = Account("keeper", hash_password("secret-pw", n=2**10))
        await server.service.server.accounts.store.create_account(account)
        await server.stop()
        again = start_server(self, data_dir=data_dir)
        found = await again.service.server.accounts.store.get_account("KEEPER")
        assert found is not None
        self.assertEqual(found.name, "keeper")

    def test_history_retention_comes_from_the_limits(self) -> None:
        limits = replace(Limits(), history_days=2, history_per_target=7)
        server = start_server(self, limits=limits)
        history = server.service.server.history
        assert isinstance(history, SQLiteHistory)
        self.assertEqual(history.config.max_per_target, 7)
        self.assertEqual(history.config.max_age, 2 * 24 * 3600)

    async def test_registered_channels_are_loaded_on_start(self) -> None:
        data_dir = Path(self.mktemp())
        server = start_server(self, data_dir=data_dir)
        await server.service.storage_ready
        store = server.service.server.accounts.store
        await store.create_account(Account("keeper", hash_password("pw", n=2**10)))
        await store.register_channel(
            RegisteredChannel("#kept", "keeper", 0.0, topic="Still here", modes="mnt")
        )
        await server.stop()
        again = start_server(self, data_dir=data_dir)
        await again.service.storage_ready
        bob = await again.client("bob")
        bob.send("JOIN", "#kept")
        topic = await bob.wait_for(lambda m: m.command == "332")
        self.assertEqual(topic.params[-1], "Still here")
        bob.send("MODE", "#kept")
        modes = await bob.wait_for(lambda m: m.command == "324")
        self.assertEqual(modes.params[2], "+mnt")


def self_signed_client() -> tuple[PrivateCertificate, str]:
    """A self-signed client certificate and its SHA-256 fingerprint."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a client")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return PrivateCertificate.loadPEM(pem), cert.fingerprint(hashes.SHA256()).hex()


class ClientCertificateTests(TestCase):
    async def test_server_sees_any_client_certificate(self) -> None:
        server = start_server(self)
        client_cert, fingerprint = self_signed_client()
        options = optionsForClientTLS(
            "localhost",
            trustRoot=Certificate.loadPEM(server.ca_file.read_bytes()),
            clientCertificate=client_cert,
        )
        endpoint = wrapClientTLS(
            options, TCP4ClientEndpoint(reactor, "127.0.0.1", server.tls_port)
        )
        client = server.track(await connectProtocol(endpoint, LineClient()))
        await client.register("certified")
        without = await server.client("plain")
        conns = {c.nick: c for c in server.service.server.connections}
        self.assertEqual(
            certificate_fingerprint(conns["certified"].transport), fingerprint
        )
        self.assertIsNone(certificate_fingerprint(conns["plain"].transport))
        await without.sync()
