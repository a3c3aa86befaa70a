"""Webhook signatures: a receiver accepts exactly what the sender signed, recently."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from services.delivery.signing import idempotency_key, new_secret, sign, verify_signature

SECRET = "whsec_test-secret-of-the-subscription"
BODY = b'{"subscription":"s","type":"event-notification"}'
NOW = 1_800_000_000


def test_a_signature_verifies_and_matches_the_documented_recipe() -> None:
    header = sign(SECRET, BODY, timestamp=NOW)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"
    assert verify_signature(SECRET, header, BODY, now=NOW)


def test_a_tampered_body_fails() -> None:
    header = sign(SECRET, BODY, timestamp=NOW)
    assert not verify_signature(SECRET, header, BODY.replace(b'"s"', b'"t"'), now=NOW)
    assert not verify_signature(SECRET, header, BODY + b" ", now=NOW)


def test_a_wrong_secret_fails() -> None:
    header = sign(SECRET, BODY, timestamp=NOW)
    assert not verify_signature(SECRET + "x", header, BODY, now=NOW)


def test_an_old_or_future_timestamp_fails_replay_protection() -> None:
    header = sign(SECRET, BODY, timestamp=NOW)
    assert verify_signature(SECRET, header, BODY, now=NOW + 300)
    assert not verify_signature(SECRET, header, BODY, now=NOW + 301)
    assert not verify_signature(SECRET, header, BODY, now=NOW - 301)
    assert verify_signature(SECRET, header, BODY, now=NOW + 600, tolerance_s=600)


def test_a_changed_timestamp_fails() -> None:
    mac = sign(SECRET, BODY, timestamp=NOW).split(",")[1]
    assert not verify_signature(SECRET, f"t={NOW + 1},{mac}", BODY, now=NOW)


def test_malformed_headers_fail() -> None:
    good = sign(SECRET, BODY, timestamp=NOW)
    for header in (None, "", "v1=abc", f"t={NOW}", f"t=x,{good.split(',')[1]}", "garbage"):
        assert not verify_signature(SECRET, header, BODY, now=NOW), header


def test_any_of_several_signatures_may_match_during_rotation() -> None:
    old = sign("whsec_old", BODY, timestamp=NOW).split(",")[1]
    new = sign(SECRET, BODY, timestamp=NOW)
    assert verify_signature(SECRET, f"{new},{old}", BODY, now=NOW)
    assert verify_signature("whsec_old", f"{new},{old}", BODY, now=NOW)


@given(body=st.binary(max_size=512), flip=st.integers(min_value=0, max_value=511))
def test_every_body_verifies_and_any_changed_byte_fails(body: bytes, flip: int) -> None:
    header = sign(SECRET, body, timestamp=NOW)
    assert verify_signature(SECRET, header, body, now=NOW)
    if body:
        i = flip % len(body)
        changed = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
        assert not verify_signature(SECRET, header, changed, now=NOW)


def test_secrets_are_fresh_and_keys_stable() -> None:
    assert new_secret() != new_secret()
    assert idempotency_key("sub", 7) == idempotency_key("sub", 7) != idempotency_key("sub", 8)


def test_a_timestamp_not_in_ascii_digits_or_too_long_fails_without_raising() -> None:
    mac = sign(SECRET, BODY, timestamp=NOW).split(",")[1]
    for t in ("²", "١٢٣", "1" * 400, "1" * 13):  # superscript, Arabic-Indic, huge, too long
        assert not verify_signature(SECRET, f"t={t},{mac}", BODY, now=NOW), t
