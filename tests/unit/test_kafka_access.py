"""Every Kafka client is built from one KafkaAccess: secured by default, PLAINTEXT on
loopback only, and a clear refusal for whatever is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.backbone.errors import ConfigurationError
from services.backbone.kafka_access import ENV_NAMES, KafkaAccess
from services.backbone.settings import BackboneSettings


@pytest.fixture(autouse=True)
def no_kafka_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that ran a Kafka test holds the run's administrator in its environment."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def test_the_default_is_sasl_ssl_and_it_wants_a_principal() -> None:
    with pytest.raises(ConfigurationError, match="INFOSHARE_KAFKA_USERNAME"):
        BackboneSettings().kafka_access()


@given(
    st.sampled_from(["127.0.0.1", "127.8.9.10", "localhost", "[::1]"]),
    st.integers(1, 65535),
)
def test_plaintext_is_allowed_on_loopback(host: str, port: int) -> None:
    assert KafkaAccess.plaintext(f"{host}:{port}").checked().protocol == "PLAINTEXT"


@pytest.mark.parametrize(
    "bootstrap",
    [
        "kafka.example.org:9092",
        "10.0.0.5:9092",
        "127.0.0.1:9092,192.168.1.2:9092",
        "[fe80::1]:9092",
    ],
)
def test_plaintext_beyond_loopback_is_refused(bootstrap: str) -> None:
    with pytest.raises(ConfigurationError, match="loopback only"):
        KafkaAccess.plaintext(bootstrap).checked()


def test_a_password_and_a_password_file_together_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-the-file\n")
    settings = BackboneSettings(kafka_username="processor", kafka_password_file=secret)
    assert settings.kafka_access().password == "from-the-file"
    both = BackboneSettings(
        kafka_username="processor", kafka_password="given", kafka_password_file=secret
    )
    with pytest.raises(ConfigurationError, match="not both"):
        both.kafka_access()


def test_mutual_tls_wants_a_certificate_and_named_files_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="client certificate"):
        KafkaAccess("127.0.0.1:9094", protocol="SSL").checked()
    missing = KafkaAccess(
        "127.0.0.1:9092", username="u", password="p", ca_file=tmp_path / "nowhere.pem"
    )
    with pytest.raises(ConfigurationError, match="does not exist"):
        missing.checked()


def test_the_password_is_not_in_the_repr_and_travels_to_the_client() -> None:
    access = KafkaAccess("127.0.0.1:9092", username="audit", password="s3cret-pass")
    assert "s3cret-pass" not in repr(access)
    kwargs = access.aiokafka()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_password"] == "s3cret-pass"
    assert kwargs["ssl_context"].check_hostname
    assert access.librdkafka()["sasl.mechanism"] == "SCRAM-SHA-512"


def test_settings_and_environment_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    access = KafkaAccess("127.0.0.1:9092", username="consent", password="pw-1234")
    for name, value in access.as_env().items():
        monkeypatch.setenv(name, value)
    assert BackboneSettings().kafka_access() == access
    assert BackboneSettings(**access.settings()).kafka_access() == access
