"""How a process reaches Kafka: where, and as whom.

Every Kafka client the project runs (producers, transactional producers, consumers, admin
clients; in every process and CLI command) is built from one :class:`KafkaAccess`. The
secured forms are SASL_SSL with SCRAM-SHA-512 and mutual TLS (``SSL`` with a client
certificate). PLAINTEXT exists for debugging only, and is refused unless every bootstrap
address is on loopback.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from services.backbone.errors import ConfigurationError
from services.backbone.hosts import is_loopback

SecurityProtocol = Literal["SASL_SSL", "SSL", "PLAINTEXT"]
SASL_MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class KafkaAccess:
    """The bootstrap servers and the credentials of one principal."""

    bootstrap: str
    protocol: SecurityProtocol = "SASL_SSL"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    cert_file: Path | None = None  # mutual TLS: this principal's certificate (and chain)
    key_file: Path | None = None

    @classmethod
    def plaintext(cls, bootstrap: str) -> KafkaAccess:
        """Unauthenticated and unencrypted: debugging on loopback only."""
        return cls(bootstrap, protocol="PLAINTEXT")

    def checked(self) -> KafkaAccess:
        """This access, or a ConfigurationError that says what is missing or unsafe."""
        if self.protocol == "PLAINTEXT":
            outside = [h for h in _hosts(self.bootstrap) if not is_loopback(h)]
            if outside:
                raise ConfigurationError(
                    "PLAINTEXT Kafka is for debugging on loopback only, and the bootstrap "
                    f"names {', '.join(outside)}: use SASL_SSL or SSL "
                    "(INFOSHARE_KAFKA_SECURITY_PROTOCOL)"
                )
            return self
        if self.protocol == "SASL_SSL" and not (self.username and self.password):
            raise ConfigurationError(
                "Kafka over SASL_SSL needs a principal: set INFOSHARE_KAFKA_USERNAME and "
                "INFOSHARE_KAFKA_PASSWORD (or INFOSHARE_KAFKA_PASSWORD_FILE)"
            )
        if self.protocol == "SSL" and not (self.cert_file and self.key_file):
            raise ConfigurationError(
                "Kafka over mutual TLS needs a client certificate: set "
                "INFOSHARE_KAFKA_CERT_FILE and INFOSHARE_KAFKA_KEY_FILE"
            )
        for name, path in (("CA", self.ca_file), ("cert", self.cert_file), ("key", self.key_file)):
            if path is not None and not path.is_file():
                raise ConfigurationError(f"the Kafka {name} file {path} does not exist")
        return self

    @property
    def principal(self) -> str:
        """Who the broker will see (for messages; the broker decides for certificates)."""
        if self.protocol == "SASL_SSL":
            return self.username or "?"
        if self.protocol == "SSL":
            return f"certificate {self.cert_file}"
        return "ANONYMOUS"

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.protocol,
        }
        if self.protocol == "PLAINTEXT":
            return kwargs
        kwargs["ssl_context"] = _ssl_context(self.ca_file, self.cert_file, self.key_file)
        if self.protocol == "SASL_SSL":
            kwargs["sasl_mechanism"] = SASL_MECHANISM
            kwargs["sasl_plain_username"] = self.username
            kwargs["sasl_plain_password"] = self.password
        return kwargs

    def librdkafka(self) -> dict[str, str]:
        """The same settings in librdkafka's (and the Java client's) property names."""
        conf = {"bootstrap.servers": self.bootstrap, "security.protocol": self.protocol}
        if self.ca_file is not None:
            conf["ssl.ca.location"] = str(self.ca_file)
        if self.cert_file is not None and self.key_file is not None:
            conf["ssl.certificate.location"] = str(self.cert_file)
            conf["ssl.key.location"] = str(self.key_file)
        if self.protocol == "SASL_SSL":
            conf["sasl.mechanism"] = SASL_MECHANISM
            conf["sasl.username"] = self.username or ""
            conf["sasl.password"] = self.password or ""
        return conf

    def settings(self) -> dict[str, Any]:
        """The same access as BackboneSettings fields (``Settings(**access.settings())``)."""
        fields: dict[str, Any] = {
            "kafka_bootstrap": self.bootstrap,
            "kafka_security_protocol": self.protocol,
            "kafka_username": self.username,
            "kafka_password": self.password,
            "kafka_ca_file": self.ca_file,
            "kafka_cert_file": self.cert_file,
            "kafka_key_file": self.key_file,
        }
        return fields

    def as_env(self) -> dict[str, str]:
        """The environment a child process reads the same access from (BackboneSettings)."""
        env = {
            "INFOSHARE_KAFKA_BOOTSTRAP": self.bootstrap,
            "INFOSHARE_KAFKA_SECURITY_PROTOCOL": self.protocol,
        }
        optional = {
            "INFOSHARE_KAFKA_USERNAME": self.username,
            "INFOSHARE_KAFKA_PASSWORD": self.password,
            "INFOSHARE_KAFKA_CA_FILE": self.ca_file,
            "INFOSHARE_KAFKA_CERT_FILE": self.cert_file,
            "INFOSHARE_KAFKA_KEY_FILE": self.key_file,
        }
        env |= {k: str(v) for k, v in optional.items() if v is not None}
        return env


ENV_NAMES = (
    "INFOSHARE_KAFKA_BOOTSTRAP",
    "INFOSHARE_KAFKA_SECURITY_PROTOCOL",
    "INFOSHARE_KAFKA_USERNAME",
    "INFOSHARE_KAFKA_PASSWORD",
    "INFOSHARE_KAFKA_PASSWORD_FILE",
    "INFOSHARE_KAFKA_CA_FILE",
    "INFOSHARE_KAFKA_CERT_FILE",
    "INFOSHARE_KAFKA_KEY_FILE",
)
"""Every variable :meth:`KafkaAccess.as_env` and BackboneSettings use: a process that hands
a child another principal's access clears these first."""


@functools.lru_cache(maxsize=16)
def _ssl_context(ca: Path | None, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    """A verifying client context (the system's CAs, or ``ca``), with a client certificate
    for mutual TLS. Built once per set of files: loading a CA costs milliseconds."""
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(ca) if ca is not None else None
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None and key is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


def _hosts(bootstrap: str) -> list[str]:
    hosts = []
    for entry in bootstrap.split(","):
        entry = entry.strip()
        if entry.startswith("["):  # [::1]:9092
            hosts.append(entry[1:].split("]", 1)[0])
        elif entry:
            hosts.append(entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry)
    return hosts
