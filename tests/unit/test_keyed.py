"""Keyed one-way identifiers: HMAC-SHA256, hex, per key and per domain."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.backbone.keyed import keyed_id

SECRET = bytes(range(32))
secrets_ = st.binary(min_size=1, max_size=64)
texts = st.text(max_size=40)


def test_is_the_documented_hmac_construction() -> None:
    mac = hmac.new(SECRET, b"routing\x1fnhs:9990000123", hashlib.sha256).digest()
    expected = mac.hex()[:32]
    assert keyed_id(SECRET, "routing", "nhs:9990000123") == expected


def test_is_32_lower_case_hex_characters_by_default() -> None:
    token = keyed_id(SECRET, "routing", "nhs:9990000123")
    assert re.fullmatch(r"[0-9a-f]{32}", token)


def test_length_cuts_the_same_token() -> None:
    full = keyed_id(SECRET, "d", "x", length=64)
    assert len(full) == 64
    assert keyed_id(SECRET, "d", "x", length=10) == full[:10]


def test_does_not_contain_the_identifier() -> None:
    assert "9990000123" not in keyed_id(SECRET, "routing", "nhs:9990000123", length=64)


def test_refuses_an_empty_secret() -> None:
    with pytest.raises(ValueError, match="non-empty secret"):
        keyed_id(b"", "routing", "nhs:9990000123")


@given(secrets_, texts, texts)
def test_is_deterministic(secret: bytes, domain: str, identifier: str) -> None:
    assert keyed_id(secret, domain, identifier) == keyed_id(secret, domain, identifier)


@given(secrets_, texts, texts, texts)
def test_differs_across_domains(secret: bytes, d1: str, d2: str, identifier: str) -> None:
    assume(d1 != d2)
    assert keyed_id(secret, d1, identifier) != keyed_id(secret, d2, identifier)


@given(secrets_, secrets_, texts, texts)
def test_differs_across_keys(s1: bytes, s2: bytes, domain: str, identifier: str) -> None:
    # HMAC pads keys shorter than the block with zeros, so b"k" and b"k\0" are one key.
    assume(s1.rstrip(b"\0") != s2.rstrip(b"\0"))
    assert keyed_id(s1, domain, identifier) != keyed_id(s2, domain, identifier)


@given(secrets_, texts, texts, texts)
def test_differs_across_identifiers(secret: bytes, domain: str, i1: str, i2: str) -> None:
    assume(i1 != i2)
    assert keyed_id(secret, domain, i1) != keyed_id(secret, domain, i2)
