"""Settings every service shares. Each service extends these with its own class.

Environment variables carry the ``INFOSHARE_`` prefix (``INFOSHARE_KAFKA_BOOTSTRAP`` ...).
Nothing reads them at import time: a composition root builds its settings object.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.backbone.directory import Directory, load_directory
from services.backbone.errors import ConfigurationError
from services.backbone.kafka_access import KafkaAccess, SecurityProtocol
from services.backbone.keyring import Keyring, keyring_from_text, load_keyring
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
    person_index_database_url: str | None = Field(
        None,
        description="the person index the agency services and the consent API share "
        "(SQLAlchemy URL); default: SQLite beside the keyring file, person-index.db",
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

    def keyring(self) -> Keyring:
        if self.keyring_yaml is not None:
            return keyring_from_text(self.keyring_yaml.get_secret_value(), "INFOSHARE_KEYRING_YAML")
        return load_keyring(self.keyring_file)

    def schemas(self) -> SchemaRegistry:
        return SchemaRegistry.load(self.schemas_dir)

    def scrape_token(self) -> str | None:
        return self.metrics_token.get_secret_value() if self.metrics_token else None

    def person_index_url(self) -> str:
        return self.beside_keyring(self.person_index_database_url, "person-index.db")

    def beside_keyring(self, url: str | None, name: str) -> str:
        """``url``, or an SQLite database ``name`` beside the keyring file."""
        if url:
            return url
        if self.keyring_file is None:
            raise ConfigurationError(
                f"set the database URL for {name} (see INFOSHARE_*_DATABASE_URL) or "
                "INFOSHARE_KEYRING_FILE, beside which SQLite databases are kept"
            )
        return f"sqlite:///{self.keyring_file.resolve().parent / name}"


class HttpSettings(BackboneSettings):
    host: str = Field("127.0.0.1", description="address the HTTP API listens on")
    port: int = Field(8000, ge=0, le=65535, description="port the HTTP API listens on")
