"""Webhook secrets sealed at rest: AES-GCM under the keyring's webhook_secret keys, bound to
their subscription, readable after a key rotation, never shown in a repr or an error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from services.backbone.errors import ConfigurationError
from services.backbone.keyring import generate_keyring, load_keyring, parse_keyring
from services.delivery.errors import SecretUnreadable
from services.delivery.secret_box import Sealed, SecretBox
from services.delivery.signing import new_secret

SECRET = new_secret()


def _box(**keys: bytes) -> SecretBox:
    return SecretBox(keys, active=list(keys)[-1])


def test_a_sealed_secret_opens_for_its_subscription_only() -> None:
    box = _box(k1=os.urandom(32))
    sealed = box.seal(SECRET, subscription_id="sub-a")
    assert sealed.key_id == "k1" and len(sealed.nonce) == 12
    assert SECRET.encode() not in sealed.ciphertext
    assert box.open(sealed, subscription_id="sub-a") == SECRET
    with pytest.raises(SecretUnreadable):
        box.open(sealed, subscription_id="sub-b")  # copied onto another subscription


def test_every_seal_has_a_fresh_nonce() -> None:
    box = _box(k1=os.urandom(32))
    one, two = (box.seal(SECRET, subscription_id="s") for _ in range(2))
    assert one.nonce != two.nonce and one.ciphertext != two.ciphertext


def test_an_altered_ciphertext_does_not_open() -> None:
    box = _box(k1=os.urandom(32))
    sealed = box.seal(SECRET, subscription_id="s")
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    with pytest.raises(SecretUnreadable):
        box.open(Sealed(sealed.key_id, sealed.nonce, flipped), subscription_id="s")


def test_after_rotation_old_secrets_open_and_new_ones_use_the_new_key() -> None:
    old_key, new_key = os.urandom(32), os.urandom(32)
    sealed_before = _box(old=old_key).seal(SECRET, subscription_id="s")
    rotated = SecretBox({"old": old_key, "new": new_key}, active="new")
    assert rotated.open(sealed_before, subscription_id="s") == SECRET
    assert rotated.seal(SECRET, subscription_id="s").key_id == "new"
    with pytest.raises(SecretUnreadable) as caught:  # the old key retired too early
        _box(new=new_key).open(sealed_before, subscription_id="s")
    assert "'old'" in str(caught.value) and SECRET not in str(caught.value)


def test_nothing_secret_in_a_repr() -> None:
    key = os.urandom(32)
    box = _box(k1=key)
    sealed = box.seal(SECRET, subscription_id="s")
    for shown in (repr(box), repr(sealed)):
        assert SECRET not in shown and sealed.ciphertext.hex() not in shown
        assert key.hex() not in shown


def test_keys_must_be_32_bytes_and_the_active_one_present() -> None:
    with pytest.raises(ConfigurationError):
        SecretBox({"k1": os.urandom(16)}, active="k1")
    with pytest.raises(ConfigurationError):
        SecretBox({"k1": os.urandom(32)}, active="k2")


def test_the_box_of_a_generated_keyring_and_of_one_without_the_key(tmp_path: Path) -> None:
    path = generate_keyring(tmp_path / "keyring.yaml", ["la-northshire"])
    keyring = load_keyring(path)
    box = SecretBox.of(keyring)
    assert box.seal(SECRET, subscription_id="s").key_id == keyring.active_webhook_key
    doc = yaml.safe_load(path.read_text())
    del doc["webhook_secret"]
    with pytest.raises(ConfigurationError, match="webhook_secret"):
        SecretBox.of(parse_keyring(doc))
