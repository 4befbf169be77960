"""Server TLS: certificate loading, the development CA, and reload.

The listeners share one `ReloadableServerTLS`; swapping its certificate
(``SIGHUP``) changes what new connections see and leaves the open ones alone.
IRC connections run in `chat.transport.TLSProtocol`; the web listener's in
Twisted's TLS transport (`TLSServerFactory`), which autobahn needs for the
channel binding it reads from every secure WebSocket.
Every server context accepts TLS 1.2 and newer only, with Twisted's (modern
OpenSSL) cipher defaults.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL, crypto
from twisted.internet.interfaces import (
    IOpenSSLServerConnectionCreator,
    IProtocolFactory,
)
from twisted.internet.protocol import connectionDone
from twisted.internet.ssl import CertificateOptions, TLSVersion
from twisted.protocols.tls import (
    BufferingTLSTransport,
    TLSMemoryBIOFactory,
)
from twisted.python.failure import Failure
from zope.interface import implementer

#: Files of the development CA and certificate, inside the certificate directory.
DEV_CA_FILE = "ca.pem"
DEV_CA_KEY_FILE = "ca-key.pem"
DEV_CERT_FILE = "server.pem"
DEV_KEY_FILE = "server-key.pem"
#: Names the development certificate is valid for.
DEV_DNS_NAMES = ("localhost",)
DEV_IP_ADDRESSES = ("127.0.0.1", "::1")
#: The oldest protocol version a server accepts.
MINIMUM_TLS_VERSION = TLSVersion.TLSv1_2

_KEY_TYPES = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)
_CA_DAYS = 3650
_CERT_DAYS = 825
_KEY_MODE = 0o600


class TLSConfigError(ValueError):
    """A certificate or key cannot be used; the message says why."""


# -- loading ------------------------------------------------------------------


def server_options(cert: Path, key: Path) -> CertificateOptions:
    """TLS 1.2+ server options from PEM files, checked by building a context.

    *cert* may hold a chain (leaf first, like Let's Encrypt's fullchain.pem).
    """
    try:
        chain = x509.load_pem_x509_certificates(cert.read_bytes())
    except OSError as error:
        raise TLSConfigError(f"cannot read {cert}: {error.strerror}") from error
    except ValueError as error:
        raise TLSConfigError(f"{cert} holds no PEM certificate: {error}") from error
    try:
        private_key = serialization.load_pem_private_key(key.read_bytes(), None)
    except OSError as error:
        raise TLSConfigError(f"cannot read {key}: {error.strerror}") from error
    except (ValueError, TypeError) as error:
        raise TLSConfigError(f"{key} holds no usable PEM key: {error}") from error
    if not isinstance(private_key, _KEY_TYPES):
        raise TLSConfigError(f"{key}: unsupported key type (use RSA, EC or Ed25519)")
    options = CertificateOptions(
        privateKey=crypto.PKey.from_cryptography_key(private_key),
        certificate=crypto.X509.from_cryptography(chain[0]),
        extraCertChain=[crypto.X509.from_cryptography(c) for c in chain[1:]],
        raiseMinimumTo=MINIMUM_TLS_VERSION,
    )
    try:
        options.getContext()
    except SSL.Error as error:
        raise TLSConfigError(
            f"{key} does not match the certificate in {cert}: {error}"
        ) from error
    return options


def _accept_any_client_certificate(
    connection: SSL.Connection,
    certificate: crypto.X509,
    error: int,
    depth: int,
    ok: int,
) -> bool:
    return True


@implementer(IOpenSSLServerConnectionCreator)
class ReloadableServerTLS:
    """The server side of every TLS listener; `replace` swaps the certificate.

    Clients may present a certificate, of any issuer: it is not checked here
    but identifies its owner by fingerprint (CertFP, SASL EXTERNAL).
    """

    def __init__(self, options: CertificateOptions) -> None:
        self.replace(options)

    def replace(self, options: CertificateOptions) -> None:
        """Use *options* for every connection accepted from now on."""
        context = options.getContext()
        # A renegotiation would stall writes in the middle of a connection.
        context.set_options(SSL.OP_NO_RENEGOTIATION)
        context.set_verify(
            SSL.VERIFY_PEER | SSL.VERIFY_CLIENT_ONCE, _accept_any_client_certificate
        )
        self._context = context

    def serverConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        return SSL.Connection(self._context, None)


class _CountingTLSProtocol(BufferingTLSTransport):
    """The web listener's TLS: small writes of one reactor turn become one TLS
    record (Twisted's buffering transport); connections lost before the
    handshake are counted."""

    factory: TLSServerFactory

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        # Twisted keeps handshake completion in this attribute.
        if not getattr(self, "_handshakeDone", False):
            self.factory.handshake_failures += 1
        super().connectionLost(reason)


class TLSServerFactory(TLSMemoryBIOFactory):
    """TLS around the web site *wrapped*, counting connections that never
    finished a handshake."""

    protocol = _CountingTLSProtocol

    def __init__(self, tls: ReloadableServerTLS, wrapped: IProtocolFactory) -> None:
        super().__init__(tls, False, wrapped)
        self.handshake_failures = 0


def tls_version(transport: object) -> str | None:
    """The TLS version (``TLSv1.3``) of a connection over *transport*, or None
    when it is not TLS or its handshake has not finished."""
    get_handle = getattr(transport, "getHandle", None)
    handle = get_handle() if callable(get_handle) else None
    if not isinstance(handle, SSL.Connection):
        return None
    version = handle.get_protocol_version_name()
    return None if version in ("", "Unknown") else str(version)


# -- the development CA ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DevCertificate:
    """Where the development certificate lives, and whether it is new."""

    cert: Path
    key: Path
    ca: Path
    created: bool


def ensure_dev_certificate(cert_dir: Path) -> DevCertificate:
    """Reuse or create a development CA and a localhost certificate in *cert_dir*.

    The CA is reused when present, so clients that trust it keep working when
    the server certificate is made again.  Keys are written with mode 0600.
    A directory or file that cannot be written raises `TLSConfigError`.
    """
    try:
        return _ensure_dev_certificate(cert_dir)
    except OSError as error:
        where = error.filename or cert_dir
        raise TLSConfigError(
            f"cannot write the development certificate in {cert_dir}: "
            f"{where}: {error.strerror or error}"
        ) from error


def _ensure_dev_certificate(cert_dir: Path) -> DevCertificate:
    ca_file, ca_key_file = cert_dir / DEV_CA_FILE, cert_dir / DEV_CA_KEY_FILE
    cert_file, key_file = cert_dir / DEV_CERT_FILE, cert_dir / DEV_KEY_FILE
    if ca_file.exists() and cert_file.exists() and key_file.exists():
        return DevCertificate(cert_file, key_file, ca_file, created=False)
    cert_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    if ca_file.exists() and ca_key_file.exists():
        ca_cert = x509.load_pem_x509_certificate(ca_file.read_bytes())
        loaded = serialization.load_pem_private_key(ca_key_file.read_bytes(), None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise TLSConfigError(f"{ca_key_file}: not a development CA key")
        ca_key = loaded
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _make_ca(ca_key, now)
        _write_key(ca_key_file, ca_key)
        ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _make_server_cert(server_key, ca_key, ca_cert, now)
    _write_key(key_file, server_key)
    cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    return DevCertificate(cert_file, key_file, ca_file, created=True)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _KEY_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _make_ca(
    key: ec.EllipticCurvePrivateKey, now: datetime.datetime
) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "chat-server development"),
            x509.NameAttribute(NameOID.COMMON_NAME, "chat-server development CA"),
        ]
    )
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _make_server_cert(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    now: datetime.datetime,
) -> x509.Certificate:
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in DEV_DNS_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in DEV_IP_ADDRESSES]
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
