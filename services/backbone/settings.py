"""Settings every service shares. Each service extends these with its own class.

Environment variables carry the ``INFOSHARE_`` prefix (``INFOSHARE_KAFKA_BOOTSTRAP`` ...).
Nothing reads them at import time: a composition root builds its settings object.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.backbone.directory import Directory, load_directory
from services.backbone.errors import ConfigurationError
from services.backbone.kafka_access import KafkaAccess, SecurityProtocol
from services.backbone.key_reload import KeyringSource
from services.backbone.key_roles import Role, role_doc
from services.backbone.keyring import Keyring, keyring_doc, parse_keyring, read_keyring_text
from services.backbone.people import PeopleConfig, PeopleVerifier, trusted_url
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics


class BackboneSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INFOSHARE_", extra="ignore")

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    kafka_security_protocol: SecurityProtocol = Field(
        "SASL_SSL",
        description="SASL_SSL (SCRAM-SHA-512), SSL (mutual TLS), or PLAINTEXT (debugging on "
        "loopback only)",
    )
    kafka_username: str | None = Field(None, description="SCRAM principal (SASL_SSL)")
    kafka_password: SecretStr | None = Field(None, description="SCRAM password (SASL_SSL)")
    kafka_password_file: Path | None = Field(
        None, description="a file holding the SCRAM password, instead of KAFKA_PASSWORD"
    )
    kafka_ca_file: Path | None = Field(
        None, description="PEM CA the brokers' certificates chain to (default: system CAs)"
    )
    kafka_cert_file: Path | None = Field(None, description="PEM client certificate (SSL)")
    kafka_key_file: Path | None = Field(None, description="PEM client private key (SSL)")
    topic_namespace: str = Field("", description="prefix of every topic name (tests, stacks)")
    topic_partitions: int = Field(3, ge=1, description="partitions of topics this stack creates")
    topic_replication: int = Field(
        1, ge=1, description="replication factor of topics this stack creates (3 on a cluster)"
    )
    keyring_file: Path | None = Field(None, description="YAML keyring (infoshare keys generate)")
    keyring_yaml: SecretStr | None = Field(
        None, description="the keyring itself, for platforms that inject secrets as variables"
    )
    agencies_file: Path | None = Field(None, description="agency directory YAML")
    schemas_dir: Path | None = Field(None, description="directory of event JSON Schemas")
    metrics_token: SecretStr | None = Field(
        None,
        description="if set, GET /metrics answers only `Authorization: Bearer <token>` "
        "(Prometheus: `authorization: {credentials: ...}`)",
    )
    person_index_database_url: SecretStr | None = Field(
        None,
        description="the person index the agency services and the consent API share "
        "(SQLAlchemy URL, a secret: it may carry a password); default: SQLite beside the "
        "keyring file, person-index.db",
    )

    def kafka_access(self) -> KafkaAccess:
        """Where Kafka is and who this process is to it; refuses what is missing or unsafe."""
        password = self.kafka_password.get_secret_value() if self.kafka_password else None
        if password is not None and self.kafka_password_file is not None:
            raise ConfigurationError(
                "set INFOSHARE_KAFKA_PASSWORD or INFOSHARE_KAFKA_PASSWORD_FILE, not both"
            )
        if self.kafka_password_file is not None:
            try:
                password = self.kafka_password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot read the Kafka password file {self.kafka_password_file}: "
                    f"{exc.strerror}"
                ) from None
        return KafkaAccess(
            self.kafka_bootstrap,
            protocol=self.kafka_security_protocol,
            username=self.kafka_username,
            password=password,
            ca_file=self.kafka_ca_file,
            cert_file=self.kafka_cert_file,
            key_file=self.kafka_key_file,
        ).checked()

    def topics(self) -> Topics:
        return Topics(
            namespace=self.topic_namespace,
            partitions=self.topic_partitions,
            replication=self.topic_replication,
        )

    def directory(self) -> Directory:
        return load_directory(self.agencies_file)

    def keyring(self, role: Role | None, agency: str | None = None) -> Keyring:
        """This process's keys: its ``role``'s part of the keyring it is given, whether that
        is its role's own file or the whole keyring (services/backbone/key_roles.py). None:
        every key, for the operator's own commands (``infoshare audit verify``, ...)."""
        if self.keyring_yaml is not None:
            text, origin = self.keyring_yaml.get_secret_value(), "INFOSHARE_KEYRING_YAML"
        else:
            text, origin = read_keyring_text(self.keyring_file), f"{self.keyring_file}"
        doc = keyring_doc(text, origin)
        if role is not None and isinstance(doc, Mapping):
            doc = role_doc(doc, role, agency)
        return parse_keyring(doc)

    def keyring_source(self, role: Role, agency: str | None = None) -> KeyringSource:
        """This role's keys, read again when the keyring file changes (API keys issued
        or revoked take effect without a restart)."""
        return KeyringSource(
            lambda: self.keyring(role, agency),
            self.keyring_file if self.keyring_yaml is None else None,
        )

    def schemas(self) -> SchemaRegistry:
        return SchemaRegistry.load(self.schemas_dir)

    def scrape_token(self) -> str | None:
        return self.metrics_token.get_secret_value() if self.metrics_token else None

    def person_index_url(self) -> str:
        return self.beside_keyring(self.person_index_database_url, "person-index.db")

    def beside_keyring(self, url: SecretStr | None, name: str) -> str:
        """``url``, or an SQLite database ``name`` beside the keyring file."""
        if url is not None and url.get_secret_value():
            return url.get_secret_value()
        if self.keyring_file is None:
            raise ConfigurationError(
                f"set the database URL for {name} (see INFOSHARE_*_DATABASE_URL) or "
                "INFOSHARE_KEYRING_FILE, beside which SQLite databases are kept"
            )
        return f"sqlite:///{self.keyring_file.resolve().parent / name}"


class HttpSettings(BackboneSettings):
    host: str = Field("127.0.0.1", description="address the HTTP API listens on")
    port: int = Field(8000, ge=0, le=65535, description="port the HTTP API listens on")
    oidc_issuer: str | None = Field(
        None,
        description="the identity provider people sign in with (its issuer URL: https, or "
        "http on loopback); routes for practitioners and IG officers refuse without it",
    )
    oidc_audience: str = Field("infoshare", description="the audience tokens must name")
    oidc_roles_claim: str = Field(
        "roles", description="the claim holding a person's roles (dotted: realm_access.roles)"
    )
    oidc_jwks_url: str | None = Field(
        None, description="the issuer's JWKS; default: its OpenID configuration's jwks_uri"
    )

    def people(self) -> PeopleVerifier | None:
        """Verifies people's bearer tokens (services/backbone/people.py); None without an
        identity provider, when routes for people answer 503 saying so."""
        if not self.oidc_issuer:
            return None
        for url in (self.oidc_issuer, self.oidc_jwks_url):
            if url is not None and not trusted_url(url):
                raise ConfigurationError(
                    "the identity provider must be reached over https (http only on loopback)"
                )
        return PeopleVerifier(
            PeopleConfig(
                issuer=self.oidc_issuer,
                audience=self.oidc_audience,
                roles_claim=self.oidc_roles_claim,
                jwks_url=self.oidc_jwks_url,
            )
        )
