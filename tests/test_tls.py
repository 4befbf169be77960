"""TLS: the development CA, loading certificates, the reloadable context."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from OpenSSL import SSL
from twisted.trial.unittest import TestCase

from chat import tls
from chat.tls import (
    DEV_CA_FILE,
    DEV_CA_KEY_FILE,
    DEV_KEY_FILE,
    ReloadableServerTLS,
    TLSConfigError,
    ensure_dev_certificate,
    server_options,
)


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


class DevCertificateTests(TestCase):
    def setUp(self) -> None:
        self.dir = Path(self.mktemp())

    def test_creates_ca_and_localhost_certificate(self) -> None:
        dev = ensure_dev_certificate(self.dir)
        self.assertTrue(dev.created)
        self.assertEqual(dev.ca, self.dir / DEV_CA_FILE)
        cert, ca = load_cert(dev.cert), load_cert(dev.ca)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        self.assertEqual(names.value.get_values_for_type(x509.DNSName), ["localhost"])
        self.assertEqual(
            names.value.get_values_for_type(x509.IPAddress),
            [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")],
        )
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        self.assertEqual(list(usage.value), [ExtendedKeyUsageOID.SERVER_AUTH])
        self.assertEqual(cert.issuer, ca.subject)
        cert.verify_directly_issued_by(ca)
        self.assertTrue(
            ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        )

    def test_private_keys_are_private(self) -> None:
        ensure_dev_certificate(self.dir)
        for name in (DEV_KEY_FILE, DEV_CA_KEY_FILE):
            mode = stat.S_IMODE((self.dir / name).stat().st_mode)
            self.assertEqual(mode, 0o600, name)

    def test_reused_on_later_starts(self) -> None:
        first = ensure_dev_certificate(self.dir)
        before = first.cert.read_bytes()
        again = ensure_dev_certificate(self.dir)
        self.assertFalse(again.created)
        self.assertEqual(again.cert.read_bytes(), before)

    def test_new_server_certificate_keeps_the_ca(self) -> None:
        first = ensure_dev_certificate(self.dir)
        ca_before = first.ca.read_bytes()
        first.cert.unlink()
        again = ensure_dev_certificate(self.dir)
        self.assertTrue(again.created)
        self.assertEqual(again.ca.read_bytes(), ca_before)
        load_cert(again.cert).verify_directly_issued_by(load_cert(again.ca))


class ServerOptionsTests(TestCase):
    def setUp(self) -> None:
        self.dev = ensure_dev_certificate(Path(self.mktemp()))

    def test_loads(self) -> None:
        """The protocol versions are tested end to end in test_e2e."""
        options = server_options(self.dev.cert, self.dev.key)
        self.assertIsInstance(options.getContext(), SSL.Context)
        self.assertEqual(options.extraCertChain, [])
        self.assertEqual(tls.MINIMUM_TLS_VERSION.name, "TLSv1_2")

    def test_chain_file(self) -> None:
        chain = Path(self.mktemp())
        chain.write_bytes(self.dev.cert.read_bytes() + self.dev.ca.read_bytes())
        options = server_options(chain, self.dev.key)
        self.assertEqual(len(options.extraCertChain), 1)

    def test_missing_files(self) -> None:
        error = self.assertRaises(
            TLSConfigError, server_options, Path("/nope.pem"), self.dev.key
        )
        self.assertIn("/nope.pem", str(error))
        error = self.assertRaises(
            TLSConfigError, server_options, self.dev.cert, Path("/nokey.pem")
        )
        self.assertIn("/nokey.pem", str(error))

    def test_not_pem(self) -> None:
        junk = Path(self.mktemp())
        junk.write_text("junk")
        self.assertRaises(TLSConfigError, server_options, junk, self.dev.key)
        self.assertRaises(TLSConfigError, server_options, self.dev.cert, junk)

    def test_key_of_another_certificate(self) -> None:
        other = Path(self.mktemp())
        key = ec.generate_private_key(ec.SECP256R1())
        other.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        error = self.assertRaises(TLSConfigError, server_options, self.dev.cert, other)
        self.assertIn("does not match", str(error))


def served_serial(reloadable: ReloadableServerTLS) -> int:
    """The serial number of the certificate a new connection would present."""
    connection = reloadable.serverConnectionForTLS(None)  # type: ignore[arg-type]
    certificate = connection.get_certificate()
    assert certificate is not None
    return int(certificate.get_serial_number())


class ReloadableServerTLSTests(TestCase):
    def test_replace_changes_the_certificate_of_new_connections(self) -> None:
        first = ensure_dev_certificate(Path(self.mktemp()))
        second = ensure_dev_certificate(Path(self.mktemp()))
        reloadable = ReloadableServerTLS(server_options(first.cert, first.key))
        self.assertEqual(served_serial(reloadable), load_cert(first.cert).serial_number)
        reloadable.replace(server_options(second.cert, second.key))
        self.assertEqual(
            served_serial(reloadable), load_cert(second.cert).serial_number
        )
