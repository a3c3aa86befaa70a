"""An agency's inbox opens the fields a protocol encrypted to it, and only those."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from consent.core.sealed import seal
from services.agency.inbox_view import load_private_key, open_fields
from services.backbone.errors import ConfigurationError

ED = "nhs-riverside-ed"


def test_fields_sealed_to_the_agency_are_opened_and_others_left_sealed() -> None:
    key = X25519PrivateKey.generate()
    other = X25519PrivateKey.generate()
    data: dict[str, Any] = {
        "subject": {
            "nhs_number": seal(
                key.public_key(), recipient=ED, path="subject.nhs_number", value="9990000123"
            )
        },
        "plan": {"category": "neglect"},
        "contacts": [
            {
                "phone": seal(
                    key.public_key(), recipient=ED, path="contacts[*].phone", value="0300 555 0142"
                )
            },
            {"phone": seal(other.public_key(), recipient=ED, path="contacts[*].phone", value="x")},
        ],
        # Sealed for another field: moved here, it must not open.
        "note": seal(key.public_key(), recipient=ED, path="plan.category", value="moved"),
    }
    opened, decrypted, sealed = open_fields(data, agency=ED, key=key)
    assert opened["subject"]["nhs_number"] == "9990000123"
    assert opened["contacts"][0]["phone"] == "0300 555 0142"
    assert opened["contacts"][1]["phone"] == data["contacts"][1]["phone"]
    assert opened["note"] == data["note"]
    assert opened["plan"] == {"category": "neglect"}
    assert decrypted == ["contacts[*].phone", "subject.nhs_number"]
    assert sealed == ["contacts[*].phone", "note"]
    # Another recipient's key opens nothing.
    _, none_opened, _ = open_fields(data, agency="la-northshire", key=key)
    assert none_opened == []


def test_without_a_key_everything_stays_sealed() -> None:
    key = X25519PrivateKey.generate()
    data = {"a": seal(key.public_key(), recipient=ED, path="a", value="v")}
    opened, decrypted, sealed = open_fields(data, agency=ED, key=None)
    assert opened == data and decrypted == [] and sealed == ["a"]


def test_the_key_file_is_checked(tmp_path: Path) -> None:
    key = X25519PrivateKey.generate()
    good = tmp_path / "good.key"
    good.write_text(base64.b64encode(key.private_bytes_raw()).decode() + "\n")
    assert (
        load_private_key(good).public_key().public_bytes_raw()
        == key.public_key().public_bytes_raw()
    )
    bad = tmp_path / "bad.key"
    bad.write_text("not base64 at all!\n")
    with pytest.raises(ConfigurationError, match="not a base64 X25519"):
        load_private_key(bad)
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_private_key(tmp_path / "missing.key")
