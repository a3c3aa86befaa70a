"""Webhook signatures are Standard Webhooks ones: the project's own library
(``standardwebhooks``) verifies exactly what the sender signed, recently, and nothing
altered."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.delivery.signing import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    idempotency_key,
    new_secret,
    secret_key,
    sign,
    signature_headers,
)

SECRET = new_secret()
BODY = b'{"subscription":"s","type":"event-notification"}'
MSG = "sub-1:7"


def _headers(body: bytes = BODY, *, at: int | None = None, secret: str = SECRET) -> dict[str, str]:
    return signature_headers(secret, body, msg_id=MSG, timestamp=at or int(time.time()))


def test_a_signature_verifies_and_matches_the_documented_recipe() -> None:
    now = int(time.time())
    headers = _headers(at=now)
    assert Webhook(SECRET).verify(BODY, headers) == {
        "subscription": "s",
        "type": "event-notification",
    }
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{MSG}.{now}.".encode() + BODY, hashlib.sha256).digest()
    assert headers == {
        ID_HEADER: MSG,
        TIMESTAMP_HEADER: str(now),
        SIGNATURE_HEADER: "v1," + base64.b64encode(mac).decode(),
    }


def test_a_secret_is_whsec_and_32_random_bytes() -> None:
    assert SECRET.startswith("whsec_") and len(secret_key(SECRET)) == 32
    assert new_secret() != new_secret()


def test_a_tampered_body_fails() -> None:
    headers = _headers()
    for body in (BODY.replace(b'"s"', b'"t"'), BODY + b" "):
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRET).verify(body, headers)


def test_a_wrong_secret_fails() -> None:
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, _headers())


def test_a_changed_timestamp_or_id_fails() -> None:
    headers = _headers()
    moved = {**headers, TIMESTAMP_HEADER: str(int(headers[TIMESTAMP_HEADER]) - 1)}
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY, moved)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY, {**headers, ID_HEADER: "sub-1:8"})


def test_an_old_or_future_timestamp_fails_replay_protection() -> None:
    now = int(time.time())
    Webhook(SECRET).verify(BODY, _headers(at=now - 200))
    for at in (now - 400, now + 400):
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRET).verify(BODY, _headers(at=at))


def test_during_rotation_each_secret_verifies_alone() -> None:
    old, new = new_secret(), new_secret()
    signature = sign([new, old], BODY, msg_id=MSG, timestamp=int(time.time()))
    assert signature.count("v1,") == 2 and " " in signature
    headers = {**_headers(), SIGNATURE_HEADER: signature}
    Webhook(new).verify(BODY, headers)
    Webhook(old).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_a_secret_made_before_standard_webhooks_signs_with_the_same_bytes() -> None:
    # Earlier secrets were URL-safe base64 without padding: the same 32 bytes, written with
    # "-" and "_". A receiver turns them into the standard alphabet to verify.
    raw = bytes(range(200, 232))
    legacy = "whsec_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert "-" in legacy or "_" in legacy
    assert secret_key(legacy) == raw
    standard = "whsec_" + base64.b64encode(raw).decode()
    Webhook(standard).verify(BODY, _headers(secret=legacy))


def test_a_malformed_secret_is_refused_without_quoting_it() -> None:
    for bad in ("whsec_", "whsec_***not base64***"):
        with pytest.raises(ValueError) as caught:
            secret_key(bad)
        assert "***" not in str(caught.value)


@given(body=st.binary(max_size=512), flip=st.integers(min_value=0, max_value=511))
def test_every_body_verifies_and_any_changed_byte_fails(body: bytes, flip: int) -> None:
    headers = _headers(body)
    Webhook(SECRET).verify(body, headers, json_parse=False)
    if body:
        i = flip % len(body)
        changed = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRET).verify(changed, headers, json_parse=False)


def test_idempotency_keys_are_stable_per_notification() -> None:
    assert idempotency_key("sub", 7) == idempotency_key("sub", 7) != idempotency_key("sub", 8)
