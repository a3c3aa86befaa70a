"""Webhook secrets at rest in the delivery store: never in clear, a database of an earlier
version (secrets in clear) encrypted in place when the service starts, and no start at all
without the key to encrypt under."""

from __future__ import annotations

import base64
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import text

from services.backbone.database import create_tables
from services.backbone.errors import ConfigurationError
from services.backbone.keyring import load_keyring
from services.delivery import subscriptions, webhook_secrets
from services.delivery.app import create_app
from services.delivery.secret_box import SecretBox
from services.delivery.settings import DeliverySettings
from services.delivery.store import DeliveryStore, db_time
from services.delivery.tables import SubscriptionRow
from tests.integration.test_delivery_api import resolver
from tests.integration.test_delivery_harness import ATTENDANCE, LA, token


def _dump(store: DeliveryStore) -> bytes:
    """Every stored value of the two tables a secret could be in, as bytes."""
    found = b""
    with store.engine.connect() as conn:
        for table in ("delivery_subscription", "delivery_webhook_secret"):
            for row in conn.execute(text(f"SELECT * FROM {table}")):  # noqa: S608
                for value in row:
                    found += value if isinstance(value, bytes) else str(value).encode()
    return found


async def test_a_new_webhook_secret_is_stored_encrypted_only(
    database_url: str, keyring_path: Path
) -> None:
    url = database_url
    app = create_app(
        DeliverySettings(keyring_file=keyring_path, delivery_database_url=url), resolver=resolver
    )
    body = {
        "event_types": [ATTENDANCE],
        "channel": "webhook",
        "endpoint": "https://hooks.example.org/h",
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://delivery"
    ) as api:
        created = await api.post(
            f"/recipients/{LA}/subscriptions", json=body, headers=token(keyring_path, LA)
        )
    assert created.status_code == 201
    secret, sub_id = created.json()["secret"], created.json()["id"]
    store = DeliveryStore(url, secret_box=SecretBox.of(load_keyring(keyring_path)))
    stored = _dump(store)
    assert secret.encode() not in stored
    assert base64.b64decode(secret.removeprefix("whsec_")) not in stored
    assert webhook_secrets.signing_secret(store, sub_id) == secret
    assert subscriptions.get(store, sub_id).legacy_secret is None


async def test_an_earlier_versions_clear_secrets_are_encrypted_in_place_on_start(
    database_url: str, keyring_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = database_url
    older = DeliveryStore(url)  # as an earlier version left it: one table, secrets in clear
    create_tables(older.engine, [SubscriptionRow.__table__])  # type: ignore[attr-defined]
    legacy = "whsec_" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    sub_id, now = str(uuid.uuid4()), db_time(datetime.now(UTC))
    with older.write() as s:
        s.add(
            SubscriptionRow(
                id=sub_id,
                agency=LA,
                status="active",
                channel="webhook",
                content="id-only",
                event_types=[ATTENDANCE],
                endpoint="https://hooks.example.org/h",
                legacy_secret=legacy,
                created_at=now,
                updated_at=now,
            )
        )
    settings = DeliverySettings(keyring_file=keyring_path, delivery_database_url=url)
    with caplog.at_level(logging.WARNING):
        create_app(settings, resolver=resolver)
    assert "encrypted 1 webhook secrets" in caplog.text and legacy not in caplog.text
    store = DeliveryStore(url, secret_box=SecretBox.of(load_keyring(keyring_path)))
    assert legacy.encode() not in _dump(store)
    assert subscriptions.get(store, sub_id).legacy_secret is None
    assert webhook_secrets.signing_secret(store, sub_id) == legacy  # the subscriber's own
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        create_app(settings, resolver=resolver)  # again: nothing left to do
    assert "webhook secrets" not in caplog.text


def test_the_service_does_not_start_without_a_webhook_secret_key(
    tmp_path: Path, keyring_path: Path
) -> None:
    doc = yaml.safe_load(keyring_path.read_text())
    del doc["webhook_secret"]
    older = tmp_path / "older-keyring.yaml"
    older.write_text(yaml.safe_dump(doc))
    url = f"sqlite:///{tmp_path / 'delivery.db'}"  # refused before any store is opened
    settings = DeliverySettings(keyring_file=older, delivery_database_url=url)
    with pytest.raises(ConfigurationError, match="webhook_secret"):
        create_app(settings, resolver=resolver)


def _with_webhook_keys(keyring_path: Path, out: Path, *, old: bool, new: dict[str, str]) -> Path:
    """The keyring with ``new`` as its active webhook key, and its old one kept if ``old``."""
    doc = yaml.safe_load(keyring_path.read_text())
    kept = [{"id": k["id"], "secret": k["secret"]} for k in doc["webhook_secret"]] if old else []
    doc["webhook_secret"] = [*kept, {**new, "active": True}]
    out.write_text(yaml.safe_dump(doc))
    return out


async def test_after_a_key_rotation_secrets_are_sealed_again_under_the_new_key(
    database_url: str, keyring_path: Path, tmp_path: Path
) -> None:
    url = database_url
    app = create_app(
        DeliverySettings(keyring_file=keyring_path, delivery_database_url=url), resolver=resolver
    )
    hook = "https://hooks.example.org/h"
    body = {"event_types": [ATTENDANCE], "channel": "webhook", "endpoint": hook}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://delivery"
    ) as api:
        created = await api.post(
            f"/recipients/{LA}/subscriptions", json=body, headers=token(keyring_path, LA)
        )
    secret, sub_id = created.json()["secret"], created.json()["id"]
    new = {"id": "webhook-secret-2", "secret": base64.b64encode(os.urandom(32)).decode()}
    # Rotated: a new active key, the old one kept to read with; the service starts.
    rotated = _with_webhook_keys(keyring_path, tmp_path / "rotated.yaml", old=True, new=new)
    create_app(DeliverySettings(keyring_file=rotated, delivery_database_url=url), resolver=resolver)
    # The old key retired: what was sealed under it was sealed again, so it still opens.
    retired = _with_webhook_keys(keyring_path, tmp_path / "retired.yaml", old=False, new=new)
    store = DeliveryStore(url, secret_box=SecretBox.of(load_keyring(retired)))
    assert webhook_secrets.signing_secret(store, sub_id) == secret
