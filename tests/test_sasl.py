"""Tests for SASL: AUTHENTICATE framing, PLAIN, EXTERNAL and SCRAM-SHA-256."""

from __future__ import annotations

import base64
import datetime
import hashlib
from pathlib import Path
from typing import cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis.strategies import binary
from OpenSSL import SSL, crypto
from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    connectProtocol,
    wrapClientTLS,
)
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator, IReactorTCP
from twisted.internet.ssl import (
    Certificate,
    CertificateOptions,
    PrivateCertificate,
    optionsForClientTLS,
)
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from chat import numerics
from chat.accounts import Accounts, scram_credentials
from chat.client.config import ClientConfig
from chat.client.connection import Session
from chat.client.security import client_security
from chat.config import Timeouts
from chat.sasl import (
    Challenge,
    External,
    Failed,
    Plain,
    ScramSha256,
    Success,
    certificate_fingerprint,
)
from chat.storage import Account, StoreUnavailableError
from chat.tls import ensure_dev_certificate, server_options
from tests.accounts_support import (
    PASSWORD,
    TEST_COST,
    ScramClient,
    account_harness,
    b64,
    inline,
    make_account,
    plain,
    sasl_connect,
)
from tests.client_support import until
from tests.e2e_support import LineClient, is_command, port_of, start_server
from tests.support import FakeClient, Harness


def self_signed() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A throwaway client certificate and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def fingerprint_of(certificate: crypto.X509) -> str:
    der = certificate.to_cryptography().public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


class PlainTests(TestCase):
    def setUp(self) -> None:
        self.harness = account_harness(timeouts=Timeouts(registration=600))
        make_account(self.harness, "alice")

    def test_success_then_registration(self) -> None:
        client = sasl_connect(self.harness)
        client.send("AUTHENTICATE PLAIN")
        self.assertEqual(client.lines(), [":irc.test AUTHENTICATE +"])
        client.send(f"AUTHENTICATE {plain('alice', PASSWORD)}")
        messages = client.messages()
        self.assertEqual(
            [m.command for m in messages],
            [numerics.RPL_LOGGEDIN, numerics.RPL_SASLSUCCESS],
        )
        self.assertEqual(messages[0].params[1:3], ("alice!~alice@127.0.0.1", "alice"))
        self.assertEqual(client.conn.account, "alice")
        self.assertFalse(client.conn.registered)
        client.send("CAP END")
        self.assertTrue(client.conn.registered)
        self.assertIn(numerics.RPL_WELCOME, client.commands())

    def test_account_name_is_case_insensitive_and_keeps_its_spelling(self) -> None:
        client = sasl_connect(self.harness)
        client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('ALICE', PASSWORD)}")
        self.assertEqual(client.conn.account, "alice")

    def test_wrong_password(self) -> None:
        client = sasl_connect(self.harness)
        client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', 'wrong')}")
        self.assertEqual(client.commands(), ["AUTHENTICATE", numerics.ERR_SASLFAIL])
        self.assertIsNone(client.conn.account)
        self.assertIsNone(client.conn.sasl)

    def test_unknown_account(self) -> None:
        client = sasl_connect(self.harness)
        client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('bob', PASSWORD)}")
        self.assertEqual(client.commands()[-1], numerics.ERR_SASLFAIL)

    def test_other_authzid_is_refused(self) -> None:
        make_account(self.harness, "bob")
        client = sasl_connect(self.harness)
        client.send(
            "AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', PASSWORD, 'bob')}"
        )
        self.assertEqual(client.commands()[-1], numerics.ERR_SASLFAIL)
        client.send(
            "AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', PASSWORD, 'Alice')}"
        )
        self.assertEqual(client.commands()[-1], numerics.RPL_SASLSUCCESS)

    def test_malformed_responses(self) -> None:
        client = sasl_connect(self.harness)
        for response in ("!!notbase64", b64(b"no-nul-here"), b64(b"\0\0pw")):
            client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {response}")
            self.assertEqual(client.commands()[-1], numerics.ERR_SASLFAIL, response)

    def test_unknown_mechanism_lists_ours(self) -> None:
        client = sasl_connect(self.harness)
        client.send("AUTHENTICATE DIGEST-MD5")
        messages = client.messages()
        self.assertEqual(
            [m.command for m in messages],
            [numerics.RPL_SASLMECHS, numerics.ERR_SASLFAIL],
        )
        self.assertEqual(messages[0].params[1], "PLAIN,EXTERNAL,SCRAM-SHA-256")

    def test_needs_the_capability(self) -> None:
        client = self.harness.connect()
        client.send("AUTHENTICATE PLAIN")
        self.assertEqual(client.commands(), [numerics.ERR_SASLFAIL])

    def test_cap_ls_advertises_mechanisms(self) -> None:
        client = self.harness.connect()
        client.send("CAP LS 302")
        listed = " ".join(m.params[-1] for m in client.messages())
        self.assertIn("sasl=PLAIN,EXTERNAL,SCRAM-SHA-256", listed.split())

    def test_abort(self) -> None:
        client = sasl_connect(self.harness)
        client.send("AUTHENTICATE PLAIN", "AUTHENTICATE *")
        self.assertEqual(client.commands()[-1], numerics.ERR_SASLABORTED)
        self.assertIsNone(client.conn.sasl)

    def test_already_authenticated(self) -> None:
        client = sasl_connect(self.harness)
        client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', PASSWORD)}")
        client.raw()
        client.send("AUTHENTICATE PLAIN")
        self.assertEqual(client.commands(), [numerics.ERR_SASLALREADY])

    def test_chunks_of_400(self) -> None:
        """A response of 400 bytes and more comes in 400-byte chunks."""
        password = "p" * 300
        make_account(self.harness, "bob", password)
        encoded = plain("bob", password)
        self.assertGreater(len(encoded), 400)
        client = sasl_connect(self.harness, "bob")
        client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {encoded[:400]}")
        self.assertEqual(client.commands(), ["AUTHENTICATE"], "nothing yet")
        client.send(f"AUTHENTICATE {encoded[400:]}")
        self.assertEqual(client.commands()[-1], numerics.RPL_SASLSUCCESS)

    def test_exactly_400_ends_with_plus(self) -> None:
        # 300 bytes encode to exactly 400 base64 characters.
        password = "q" * (300 - len("\0carol\0"))
        make_account(self.harness, "carol", password)
        encoded = plain("carol", password)
        self.assertEqual(len(encoded), 400)
        client = sasl_connect(self.harness, "carol")
        client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {encoded}")
        self.assertEqual(client.commands(), ["AUTHENTICATE"])
        client.send("AUTHENTICATE +")
        self.assertEqual(client.commands()[-1], numerics.RPL_SASLSUCCESS)

    def test_chunk_over_400_is_too_long(self) -> None:
        client = sasl_connect(self.harness)
        client.send("AUTHENTICATE PLAIN", "AUTHENTICATE " + "A" * 401)
        self.assertEqual(client.commands()[-1], numerics.ERR_SASLTOOLONG)
        client.send("AUTHENTICATE " + "A" * 400, "AUTHENTICATE AAAA")
        self.assertEqual(client.commands(), [], "the rest of that response")
        self.assertIsNone(client.conn.sasl)
        client.send("AUTHENTICATE PLAIN")
        self.assertEqual(client.lines(), [":irc.test AUTHENTICATE +"])

    def test_endless_chunks_fail_once_and_are_dropped(self) -> None:
        client = sasl_connect(self.harness)
        client.send("AUTHENTICATE PLAIN")
        client.raw()
        for _ in range(30):  # 8192 bytes is 21 chunks; the rest is dropped
            client.send("AUTHENTICATE " + "A" * 400)
        self.assertEqual(client.commands(), [numerics.ERR_SASLFAIL])
        client.send("CAP END", "NICK carol", "USER c 0 * :C")
        self.assertTrue(client.conn.registered)
        self.assertNotIn(numerics.ERR_SASLABORTED, client.commands())

    def test_failures_are_throttled_on_the_clock(self) -> None:
        client = sasl_connect(self.harness)
        for _ in range(5):
            client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', 'bad')}")
        client.raw()
        client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', PASSWORD)}")
        failure = client.messages()[-1]
        self.assertEqual(failure.command, numerics.ERR_SASLFAIL)
        self.assertIn("too many", failure.params[-1])
        self.harness.clock.advance(60)
        client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', PASSWORD)}")
        self.assertEqual(client.commands()[-1], numerics.RPL_SASLSUCCESS)

    def test_registration_waits_for_a_check_in_progress(self) -> None:
        """CAP END while the password is being checked: register after."""
        pending: list[Deferred[object]] = []
        accounts = self.harness.server.accounts

        def slow(work, *args):  # type: ignore[no-untyped-def]
            d: Deferred[object] = Deferred()
            pending.append(d)
            return d.addCallback(lambda _: maybeDeferred(work, *args))

        accounts.worker = slow
        client = sasl_connect(self.harness)
        client.send(
            "AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', PASSWORD)}", "CAP END"
        )
        self.assertFalse(client.conn.registered)
        self.assertEqual(client.commands(), ["AUTHENTICATE"])
        pending[0].callback(None)
        commands = client.commands()
        self.assertEqual(commands[:3], ["900", "903", "001"])
        self.assertTrue(client.conn.registered)
        self.assertEqual(client.conn.account, "alice")

    def test_an_abort_sent_during_a_check_comes_after_it(self) -> None:
        pending: list[Deferred[object]] = []

        def slow(work, *args):  # type: ignore[no-untyped-def]
            d: Deferred[object] = Deferred()
            pending.append(d)
            return d.addCallback(lambda _: maybeDeferred(work, *args))

        self.harness.server.accounts.worker = slow
        client = sasl_connect(self.harness)
        client.send(
            "AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', PASSWORD)}", "CAP END"
        )
        client.send("AUTHENTICATE *")
        self.assertFalse(client.conn.registered)
        pending[0].callback(None)
        self.assertTrue(client.conn.registered)
        # Lines are handled in order: the check had succeeded by then.
        self.assertEqual(client.conn.account, "alice")

    def test_cap_end_while_waiting_for_the_client_aborts(self) -> None:
        client = sasl_connect(self.harness)
        client.send("AUTHENTICATE PLAIN", "CAP END")
        commands = client.commands()
        self.assertEqual(commands[:2], ["AUTHENTICATE", numerics.ERR_SASLABORTED])
        self.assertIn(numerics.RPL_WELCOME, commands)
        self.assertIsNone(client.conn.account)


class ExternalTests(TestCase):
    def setUp(self) -> None:
        self.harness = account_harness()
        make_account(self.harness, "alice")
        self.certificate = crypto.X509.from_cryptography(self_signed()[0])
        self.certfp = fingerprint_of(self.certificate)

    def connect(self, certificate: crypto.X509 | None) -> FakeClient:
        client = sasl_connect(self.harness)
        client.transport.getPeerCertificate = lambda: certificate  # type: ignore[attr-defined]
        return client

    def test_fingerprint(self) -> None:
        client = self.connect(self.certificate)
        self.assertEqual(certificate_fingerprint(client.transport), self.certfp)
        self.assertIsNone(certificate_fingerprint(object()))

    def test_success_with_a_known_certificate(self) -> None:
        self.harness.server.accounts.store.add_certfp("alice", self.certfp)
        client = self.connect(self.certificate)
        client.send("AUTHENTICATE EXTERNAL", "AUTHENTICATE +")
        self.assertEqual(client.commands()[-2:], ["900", "903"])
        self.assertEqual(client.conn.account, "alice")

    def test_authzid_must_match(self) -> None:
        self.harness.server.accounts.store.add_certfp("alice", self.certfp)
        client = self.connect(self.certificate)
        client.send("AUTHENTICATE EXTERNAL", f"AUTHENTICATE {b64(b'bob')}")
        self.assertEqual(client.commands()[-1], numerics.ERR_SASLFAIL)
        client.send("AUTHENTICATE EXTERNAL", f"AUTHENTICATE {b64(b'Alice')}")
        self.assertEqual(client.commands()[-1], numerics.RPL_SASLSUCCESS)

    def test_unknown_certificate(self) -> None:
        client = self.connect(self.certificate)
        client.send("AUTHENTICATE EXTERNAL", "AUTHENTICATE +")
        self.assertEqual(client.commands()[-1], numerics.ERR_SASLFAIL)

    def test_no_certificate(self) -> None:
        client = self.connect(None)
        client.send("AUTHENTICATE EXTERNAL", "AUTHENTICATE +")
        self.assertEqual(client.commands()[-1], numerics.ERR_SASLFAIL)

    def test_nickserv_cert_add_uses_the_connection_certificate(self) -> None:
        client = self.connect(self.certificate)
        client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', PASSWORD)}")
        client.send("CAP END")
        client.raw()
        client.send("NS CERT ADD")
        self.assertIn(self.certfp, client.lines()[-1])
        other = self.connect(self.certificate)
        other.send("AUTHENTICATE EXTERNAL", "AUTHENTICATE +")
        self.assertEqual(other.conn.account, "alice")


class ScramTests(TestCase):
    def setUp(self) -> None:
        self.harness = account_harness()
        make_account(self.harness, "alice")

    def exchange(self, client: FakeClient, scram: ScramClient) -> list[str]:
        """Run the exchange up to the server's answer to the client-final."""
        client.send("AUTHENTICATE SCRAM-SHA-256")
        client.raw()
        client.send(f"AUTHENTICATE {b64(scram.first())}")
        [challenge] = client.messages()
        self.assertEqual(challenge.command, "AUTHENTICATE")
        client.send(
            f"AUTHENTICATE {b64(scram.final(base64.b64decode(challenge.params[0])))}"
        )
        return client.lines()

    def test_success(self) -> None:
        client = sasl_connect(self.harness)
        scram = ScramClient("alice", PASSWORD)
        [server_final] = self.exchange(client, scram)
        data = base64.b64decode(server_final.split()[-1])
        self.assertTrue(scram.verified(data), "the server proves it knows the key")
        self.assertIsNone(client.conn.account, "not before the client agrees")
        client.send("AUTHENTICATE +")
        self.assertEqual(client.commands(), ["900", "903"])
        self.assertEqual(client.conn.account, "alice")

    def test_wrong_password(self) -> None:
        client = sasl_connect(self.harness)
        lines = self.exchange(client, ScramClient("alice", "wrong password"))
        self.assertEqual(lines, [":irc.test 904 alice :SASL authentication failed"])
        self.assertIsNone(client.conn.account)

    def test_unknown_account_looks_like_a_known_one(self) -> None:
        client = sasl_connect(self.harness)
        lines = self.exchange(client, ScramClient("nobody", PASSWORD))
        self.assertEqual(lines[-1].split()[1], numerics.ERR_SASLFAIL)

    def test_channel_binding_is_refused(self) -> None:
        client = sasl_connect(self.harness)
        client.send(
            "AUTHENTICATE SCRAM-SHA-256",
            f"AUTHENTICATE {b64(b'p=tls-unique,,n=alice,r=abc')}",
        )
        self.assertEqual(client.commands()[-1], numerics.ERR_SASLFAIL)

    def test_tampered_nonce_is_refused(self) -> None:
        client = sasl_connect(self.harness)
        scram = ScramClient("alice", PASSWORD)
        client.send("AUTHENTICATE SCRAM-SHA-256", f"AUTHENTICATE {b64(scram.first())}")
        challenge = base64.b64decode(client.messages()[-1].params[0])
        final = scram.final(challenge).replace(b"r=", b"r=x", 1)
        client.send(f"AUTHENTICATE {b64(final)}")
        self.assertEqual(client.commands()[-1], numerics.ERR_SASLFAIL)

    def test_rfc_7677_example(self) -> None:
        """The exchange of RFC 7677 section 3, byte for byte."""
        salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
        account = Account(
            "user", "scrypt$x", scram=scram_credentials("pencil", 4096, salt)
        )
        self.harness.server.accounts.store.create_account(account)
        mechanism = ScramSha256(
            self.harness.server.accounts,
            "127.0.0.1",
            server_nonce="%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        )
        steps: list[object] = []
        mechanism.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").addCallback(steps.append)
        self.assertEqual(
            steps[-1],
            Challenge(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
            ),
        )
        mechanism.step(
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
            b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        ).addCallback(steps.append)
        self.assertEqual(
            steps[-1], Challenge(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
        )
        mechanism.step(b"").addCallback(steps.append)
        self.assertIsInstance(steps[-1], Success)

    def test_non_ascii_final_fails_cleanly(self) -> None:
        client = sasl_connect(self.harness)
        scram = ScramClient("alice", PASSWORD)
        client.send("AUTHENTICATE SCRAM-SHA-256", f"AUTHENTICATE {b64(scram.first())}")
        client.raw()
        client.send(f"AUTHENTICATE {b64('c=é,r=ü,p=AAAA'.encode())}")
        self.assertEqual(client.commands(), [numerics.ERR_SASLFAIL])
        self.assertIsNone(client.conn.sasl)

    @settings(max_examples=200, deadline=None)
    @given(first=binary(max_size=200), final=binary(max_size=200))
    def test_any_bytes_give_an_answer(self, first: bytes, final: bytes) -> None:
        """Whatever the client sends, each step answers; nothing raises."""
        mechanism = ScramSha256(self.harness.server.accounts, "192.0.2.1")
        steps: list[object] = []
        mechanism.step(first).addCallback(steps.append)
        mechanism.step(b"n,,n=alice,r=x" + final).addCallback(steps.append)
        mechanism.step(final).addCallback(steps.append)
        self.assertEqual(len(steps), 3)
        self.assertNotIn(True, [isinstance(step, Success) for step in steps])

    def test_garbage_fails(self) -> None:
        mechanism = ScramSha256(self.harness.server.accounts, "127.0.0.1")
        steps: list[object] = []
        mechanism.step(b"\xff\xfe").addCallback(steps.append)
        mechanism.step(b"n,,r=abc").addCallback(steps.append)
        mechanism.step(b"n,,n=a=b,r=abc").addCallback(steps.append)
        self.assertEqual(steps, [Failed(), Failed(), Failed()])


@implementer(IOpenSSLServerConnectionCreator)
class AskForClientCertificates:
    """Server TLS that asks for a client certificate and accepts any: what
    SASL EXTERNAL needs from the listener (the account decides, not a CA)."""

    def __init__(self, options: CertificateOptions) -> None:
        self.context = options.getContext()
        self.context.set_verify(SSL.VERIFY_PEER, lambda *args: True)

    def serverConnectionForTLS(self, protocol: object) -> SSL.Connection:
        return SSL.Connection(self.context, None)


class ExternalOverTLSTests(TestCase):
    """EXTERNAL with a real TLS client certificate over loopback."""

    async def listen(self) -> tuple[int, Path]:
        self.harness = account_harness()
        make_account(self.harness, "alice")
        dev = ensure_dev_certificate(Path(self.mktemp()))
        factory = TLSMemoryBIOFactory(
            AskForClientCertificates(server_options(dev.cert, dev.key)),
            False,
            self.harness.server,
        )
        port = cast(IReactorTCP, reactor).listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port_of(port), dev.ca

    async def connect(self, port: int, ca: Path, with_certificate: bool) -> LineClient:
        client_certificate = None
        if with_certificate:
            certificate, key = self_signed()
            self.certfp = fingerprint_of(crypto.X509.from_cryptography(certificate))
            pem = certificate.public_bytes(
                serialization.Encoding.PEM
            ) + key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            client_certificate = PrivateCertificate.loadPEM(pem)
        options = optionsForClientTLS(
            "localhost",
            trustRoot=Certificate.loadPEM(ca.read_bytes()),
            clientCertificate=client_certificate,
        )
        endpoint = wrapClientTLS(
            options, TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        )
        client = await connectProtocol(endpoint, LineClient())

        async def close() -> None:
            client.transport.loseConnection()
            await client.lost

        self.addCleanup(close)
        client.send("CAP", "REQ", "sasl")
        client.send("NICK", "alice")
        client.send("USER", "alice", "0", "*", "Alice")
        client.send("AUTHENTICATE", "EXTERNAL")
        await client.wait_for(is_command("AUTHENTICATE", "+"))
        return client

    async def test_certificate_logs_in(self) -> None:
        port, ca = await self.listen()
        client = await self.connect(port, ca, with_certificate=True)
        self.harness.server.accounts.store.add_certfp("alice", self.certfp)
        client.send("AUTHENTICATE", "+")
        await client.wait_for(is_command("903"))
        client.send("CAP", "END")
        welcome = await client.wait_for(is_command("001"))
        self.assertEqual(welcome.params[0], "alice")
        [conn] = self.harness.server.connections
        self.assertEqual(conn.account, "alice")

    async def test_no_certificate_fails(self) -> None:
        port, ca = await self.listen()
        client = await self.connect(port, ca, with_certificate=False)
        client.send("AUTHENTICATE", "+")
        await client.wait_for(is_command("904"))


class ProjectClientTests(TestCase):
    """The project's own client logs in with SASL PLAIN over TLS."""

    async def setUp(self) -> None:
        self.running = start_server(self)
        server = self.running.service.server
        # The service's store in the data directory, with cheap hashing.
        server.accounts = Accounts(server.accounts.store, server.clock, TEST_COST)
        await server.accounts.register("alice", PASSWORD)

    def connect(self, password: str) -> Session:
        config = ClientConfig(
            host="localhost",
            port=self.running.tls_port,
            nick="alice",
            ca=self.running.ca_file,
            sasl_user="alice",
            sasl_password=password,
        )
        session = Session(config, reactor)
        endpoint = HostnameEndpoint(
            cast(IReactorTCP, reactor), "127.0.0.1", self.running.tls_port
        )
        session.start(wrapClientTLS(client_security(config).options, endpoint))
        self.addCleanup(session.quit)
        return session

    async def test_login(self) -> None:
        session = self.connect(PASSWORD)
        await until(session, lambda: session.connected)
        assert session.protocol is not None
        self.assertTrue(session.protocol.logged_in)
        [conn] = self.running.service.server.connections
        self.assertEqual(conn.account, "alice")

    async def test_wrong_password_is_reported(self) -> None:
        session = self.connect("wrong-password")
        await until(session, lambda: session.gave_up)
        [conn] = self.running.service.server.connections or [None]
        self.assertIsNone(getattr(conn, "account", None))


class AwayStore:
    """A store whose database cannot be reached."""

    def get_account(self, name: str) -> Deferred[Account | None]:
        return fail(StoreUnavailableError("PostgreSQL: connection refused"))

    def account_for_certfp(self, certfp: str) -> Deferred[Account | None]:
        return fail(StoreUnavailableError("PostgreSQL: connection refused"))


class UnavailableTests(TestCase):
    """Every mechanism says when the account database could not be reached."""

    def setUp(self) -> None:
        self.accounts = Accounts(AwayStore(), Clock(), TEST_COST, worker=inline)  # type: ignore[arg-type]

    def test_plain(self) -> None:
        step = Plain(self.accounts, "192.0.2.1").step(b"\0alice\0" + PASSWORD.encode())
        self.assertEqual(self.successResultOf(step), Failed(unavailable=True))

    def test_external(self) -> None:
        step = External(self.accounts, "ab" * 32).step(b"")
        self.assertEqual(self.successResultOf(step), Failed(unavailable=True))

    def test_scram(self) -> None:
        step = ScramSha256(self.accounts, "192.0.2.1").step(b"n,,n=alice,r=nonce")
        self.assertEqual(self.successResultOf(step), Failed(unavailable=True))

    def test_the_client_is_told_the_service_is_unavailable(self) -> None:
        harness = Harness()
        harness.server.accounts = self.accounts
        client = sasl_connect(harness)
        client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', PASSWORD)}")
        failed = [m for m in client.messages() if m.command == "904"]
        self.assertEqual(len(failed), 1)
        self.assertIn("unavailable", failed[0].params[-1])

    def test_the_operator_log_does_not_call_it_bad_credentials(self) -> None:
        harness = Harness()
        harness.server.accounts = self.accounts
        with capturedLogs() as events:
            client = sasl_connect(harness)
            client.send(
                "AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', PASSWORD)}"
            )
        [failed] = [e for e in events if e.get("event") == "login-failed"]
        self.assertEqual(failed["why"], "account service unavailable")
