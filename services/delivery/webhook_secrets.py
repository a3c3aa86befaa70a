"""Webhook secrets in the delivery store, encrypted (secret_box.py): sealed when a
subscription is made, opened for each push, and at start, those an earlier version stored
in clear encrypted in place and those sealed under an older key sealed again under the
active one. Nothing here logs or returns a secret but :func:`signing_secret`."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from services.delivery.errors import SecretUnreadable
from services.delivery.secret_box import Sealed
from services.delivery.store import DeliveryStore
from services.delivery.tables import SubscriptionRow, WebhookSecretRow


def sealed_row(store: DeliveryStore, sub_id: str, secret: str) -> WebhookSecretRow:
    """``secret`` sealed for subscription ``sub_id``, as stored."""
    sealed = store.secret_box.seal(secret, subscription_id=sub_id)
    return WebhookSecretRow(
        subscription_id=sub_id,
        key_id=sealed.key_id,
        nonce=sealed.nonce,
        ciphertext=sealed.ciphertext,
    )


def signing_secret(store: DeliveryStore, sub_id: str) -> str:
    """A webhook subscription's signing secret, in clear (to sign with, never to show)."""
    with store.read() as s:
        row = s.get(WebhookSecretRow, sub_id)
    if row is None:
        raise SecretUnreadable("the subscription has no stored webhook secret")
    sealed = Sealed(row.key_id, row.nonce, row.ciphertext)
    return store.secret_box.open(sealed, subscription_id=sub_id)


def seal_clear_secrets(store: DeliveryStore) -> int:
    """Encrypt in place the secrets an earlier version stored in clear; how many."""
    return _retried(_seal_clear_secrets, store)


def reseal_secrets(store: DeliveryStore) -> tuple[int, int]:
    """Seal again under the active key the secrets sealed under an older one (after a key
    rotation), so the older key can be retired: how many, and how many could not be opened
    (their key already gone; they stay as they are, and their pushes fail)."""
    unreadable: list[str] = []
    resealed = _retried(lambda st: _reseal_secrets(st, unreadable), store)
    return resealed, len(set(unreadable))


def _retried(step: Callable[[DeliveryStore], int], store: DeliveryStore, attempts: int = 3) -> int:
    """Replicas starting together may race: the loser of a conflicting commit tries again
    and finds the work done."""
    for attempt in range(attempts):
        try:
            return step(store)
        except SQLAlchemyError:
            if attempt == attempts - 1:
                raise
    return 0


def _reseal_secrets(store: DeliveryStore, unreadable: list[str]) -> int:
    box = store.secret_box
    resealed = 0
    with store.write() as s:
        older = s.exec(
            select(WebhookSecretRow).where(col(WebhookSecretRow.key_id) != box.active_key_id)
        ).all()
        for row in older:
            sealed = Sealed(row.key_id, row.nonce, row.ciphertext)
            try:
                clear = box.open(sealed, subscription_id=row.subscription_id)
            except SecretUnreadable:
                unreadable.append(row.subscription_id)
                continue
            again = box.seal(clear, subscription_id=row.subscription_id)
            row.key_id, row.nonce, row.ciphertext = again.key_id, again.nonce, again.ciphertext
            s.add(row)
            resealed += 1
    return resealed


def _seal_clear_secrets(store: DeliveryStore) -> int:
    with store.write() as s:
        clear = s.exec(
            select(SubscriptionRow).where(col(SubscriptionRow.legacy_secret).is_not(None))
        ).all()
        for row in clear:
            assert row.legacy_secret is not None
            if s.get(WebhookSecretRow, row.id) is None:
                s.add(sealed_row(store, row.id, row.legacy_secret))
            row.legacy_secret = None
            s.add(row)
    return len(clear)
