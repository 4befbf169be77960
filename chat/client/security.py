"""TLS for the client: what to trust, and failures in plain words.

Verification is real by default: `optionsForClientTLS` checks the server's
name with service_identity, against the platform's trust store plus any
``--ca`` file.  Connecting to localhost while the server's development CA
exists in ``certs/`` trusts that CA too, and the status line says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from OpenSSL import SSL, crypto
from service_identity import VerificationError
from twisted.internet import ssl
from twisted.internet._sslverify import IOpenSSLTrustRoot
from twisted.python.failure import Failure
from zope.interface import implementer

from chat.client.config import ClientConfig

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class SecurityError(Exception):
    """A certificate file could not be used; the text says which and why."""


@implementer(IOpenSSLTrustRoot)
class PlatformPlus:
    """The platform's trust store plus some extra CA certificates."""

    def __init__(self, extra: list[ssl.Certificate]) -> None:
        self.extra = extra

    def _addCACertsToContext(self, context: SSL.Context) -> None:
        context.set_default_verify_paths()
        store = context.get_cert_store()
        if store is None:
            return
        for cert in self.extra:
            store.add_cert(cert.original)


@dataclass(frozen=True, slots=True)
class Security:
    """How to wrap the connection, and phrases for the status bar.

    *summary* is what the status bar shows once the handshake proved the
    certificate good (with *verifies*), or at once (without: plain text or
    ``--insecure``, shown as a warning).
    """

    options: object | None
    summary: str
    warning: str | None = None
    note: str | None = None
    verifies: bool = True
    encrypted: bool = True


#: The status bar's words for the states without a checked certificate.
PLAIN_SUMMARY = "NOT ENCRYPTED (--plain)"
INSECURE_SUMMARY = "TLS UNVERIFIED (--insecure)"
REJECTED_SUMMARY = "TLS UNVERIFIED: certificate rejected"
CHECKING_SUMMARY = "TLS, checking the certificate"


def expected_security(config: ClientConfig) -> Security:
    """What *config* promises, without loading any certificate (no options)."""
    if config.plain:
        return Security(None, PLAIN_SUMMARY, verifies=False, encrypted=False)
    if config.insecure:
        return Security(None, INSECURE_SUMMARY, verifies=False)
    if config.ca is not None:
        return Security(None, f"TLS verified (CA {config.ca.name})")
    if config.host in LOCAL_HOSTS and config.dev_ca.exists():
        return Security(None, f"TLS verified (dev CA {config.dev_ca})")
    return Security(None, "TLS verified (system trust store)")


def _load_ca(path: Path) -> ssl.Certificate:
    try:
        return ssl.Certificate.loadPEM(path.read_bytes())
    except OSError as error:
        raise SecurityError(f"cannot read CA file {path}: {error.strerror}") from None
    except (crypto.Error, ValueError):
        raise SecurityError(f"{path} is not a PEM certificate") from None


def _load_client_cert(path: Path) -> ssl.PrivateCertificate:
    try:
        return ssl.PrivateCertificate.loadPEM(path.read_bytes())
    except OSError as error:
        raise SecurityError(f"cannot read {path}: {error.strerror}") from None
    except (crypto.Error, ValueError):
        raise SecurityError(
            f"{path} must hold a PEM certificate and its private key"
        ) from None


def client_security(config: ClientConfig) -> Security:
    """Build the TLS options for *config* (``options`` is None with --plain)."""
    expected = expected_security(config)
    if config.plain:
        return Security(
            None,
            expected.summary,
            "Not encrypted (--plain): anyone on the path can read this session.",
            verifies=False,
            encrypted=False,
        )
    client_cert = _load_client_cert(config.cert) if config.cert else None
    if config.insecure:
        extra = {}
        if client_cert is not None:
            extra = {
                "privateKey": client_cert.privateKey.original,
                "certificate": client_cert.original,
            }
        return Security(
            ssl.CertificateOptions(verify=False, **extra),
            expected.summary,
            "--insecure: the server's certificate is NOT checked; "
            "anyone could be pretending to be this server.",
            verifies=False,
        )
    trusted: list[ssl.Certificate] = []
    note = None
    if config.ca is not None:
        trusted.append(_load_ca(config.ca))
    elif config.host in LOCAL_HOSTS and config.dev_ca.exists():
        trusted.append(_load_ca(config.dev_ca))
        note = f"Trusting the server's development CA {config.dev_ca} for {config.host}"
    options = ssl.optionsForClientTLS(
        config.host,
        trustRoot=PlatformPlus(trusted),
        clientCertificate=client_cert,
    )
    return Security(options, expected.summary, note=note)


def describe_failure(
    reason: Failure, host: str, issuer: str | None = None
) -> str | None:
    """Plain words for a TLS failure in *reason*, or None if it is not one.

    *issuer* names who signed the server's certificate, when known.
    """
    error = reason.value
    if isinstance(error, VerificationError):
        return (
            f"The server's certificate is not valid for the name {host!r}: "
            f"{_identity_errors(error)}. This may not be the server you meant."
        )
    if isinstance(error, SSL.Error):
        text = _ssl_reasons(error)
        if "certificate verify failed" in text:
            trusted = "the system trust store" + (
                ", certs/ca.pem" if host in LOCAL_HOSTS else ""
            )
            problem = (
                f"it is signed by {issuer!r}, a CA this client does not trust"
                if issuer
                else "it is not signed by a CA this client trusts"
            )
            return (
                f"Could not verify the certificate of {host}: {problem} "
                f"(trusted: {trusted} and --ca FILE). "
                "Use --ca FILE with the server's CA certificate."
            )
        return f"The TLS handshake with {host} failed: {text or 'unknown reason'}."
    return None


def _ssl_reasons(error: SSL.Error) -> str:
    reasons: list[str] = []
    for item in error.args[0] if error.args and isinstance(error.args[0], list) else []:
        if isinstance(item, tuple) and item:
            reasons.append(str(item[-1]))
    return ", ".join(reasons) or str(error)


def _identity_errors(error: VerificationError) -> str:
    names: list[str] = []
    for mismatch in getattr(error, "errors", []):
        identity = getattr(mismatch, "mismatched_id", None)
        value = getattr(identity, "hostname", None) or getattr(identity, "ip", None)
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        if value is not None:
            names.append(str(value))
    if names:
        return f"it does not name {', '.join(names)}"
    return str(error)
