"""The local stack's own certificate authority: a CA, the brokers' certificate, and client
certificates for principals that use mutual TLS. Made with ``cryptography`` once per state
directory; private keys are written readable by their owner only.

For a machine's own loopback stack only: production brokers get their certificates from the
organisation's PKI.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.backbone.private_files import open_private

BROKER_PRINCIPAL = "kafka-broker"
"""The brokers' certificate common name, and so their principal (a super user)."""
_VALID = dt.timedelta(days=825)


@dataclass(frozen=True)
class Tls:
    """The files of one stack's CA, under ``directory``."""

    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key_file(self) -> Path:
        return self.directory / "ca-key.pem"

    @property
    def broker_file(self) -> Path:
        """The brokers' private key and certificate chain in one PEM (Kafka's PEM keystore)."""
        return self.directory / "broker.pem"

    def client_files(self, principal: str) -> tuple[Path, Path]:
        return self.directory / f"{principal}.pem", self.directory / f"{principal}-key.pem"

    def ensure(self) -> Tls:
        """Make the CA and the brokers' certificate unless they exist already."""
        if self.ca_file.exists() and self.broker_file.exists():
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("infoshare local stack CA")
        ca = (
            _builder(ca_name, ca_name, ca_key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_key(self.ca_key_file, ca_key)
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self._issue(BROKER_PRINCIPAL, self.broker_file, None, server=True)
        return self

    def issue_client(self, principal: str) -> tuple[Path, Path]:
        """A client certificate whose common name is ``principal`` (the broker maps CN to
        the principal's name); returns (certificate, key) files, made once."""
        cert_file, key_file = self.client_files(principal)
        if not cert_file.exists():
            self._issue(principal, cert_file, key_file, server=False)
        return cert_file, key_file

    def _issue(
        self, common_name: str, cert_file: Path, key_file: Path | None, *, server: bool
    ) -> None:
        ca = x509.load_pem_x509_certificate(self.ca_file.read_bytes())
        ca_key = serialization.load_pem_private_key(self.ca_key_file.read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        key = ec.generate_private_key(ec.SECP256R1())
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = _builder(_name(common_name), ca.subject, key.public_key())
        if server:
            # Brokers are also each other's clients (inter-broker and controller listeners).
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = (
            builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        pem = cert.public_bytes(serialization.Encoding.PEM)
        if key_file is None:  # one file: key first, then the chain
            _write_key(cert_file, key, trailer=pem + self.ca_file.read_bytes())
        else:
            _write_key(key_file, key)
            cert_file.write_bytes(pem)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALID)
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey, trailer: bytes = b"") -> None:
    """PKCS#8, unencrypted (the file's mode protects it), created 0600 before any byte."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with open_private(path, "wb") as fh:
        fh.write(pem + trailer)
