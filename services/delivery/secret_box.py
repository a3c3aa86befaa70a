"""Webhook secrets encrypted at rest: AES-256-GCM under the keyring's ``webhook_secret`` key.

What is stored per subscription: the key's id, a fresh 96-bit nonce and the ciphertext (with
its tag). The subscription's id is bound in as associated data, so a sealed secret copied
onto another subscription does not open. New secrets are sealed under the active key; the
keyring keeps older keys (inactive) so secrets sealed under them still open after a
rotation. Nothing here logs, and no error quotes a secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.backbone.errors import ConfigurationError
from services.backbone.keyring import Keyring
from services.delivery.errors import SecretUnreadable

NONCE_BYTES = 12
KEY_BYTES = 32
_CONTEXT = b"infoshare webhook secret\x00"


@dataclass(frozen=True)
class Sealed:
    key_id: str
    nonce: bytes
    ciphertext: bytes

    def __repr__(self) -> str:
        return f"Sealed(key_id={self.key_id!r})"


class SecretBox:
    def __init__(self, keys: Mapping[str, bytes], *, active: str) -> None:
        if active not in keys:
            raise ConfigurationError("the active webhook secret key is not among the keys")
        if any(len(k) != KEY_BYTES for k in keys.values()):
            raise ConfigurationError(f"webhook secret keys are {KEY_BYTES} bytes (AES-256)")
        self._keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._active = active

    @classmethod
    def of(cls, keyring: Keyring) -> SecretBox:
        """The box of the keyring's ``webhook_secret`` keys; refuses a keyring without an
        active one (the service does not start: it would have to store secrets in clear)."""
        if keyring.active_webhook_key is None:
            raise ConfigurationError(
                "the keyring has no active 'webhook_secret' key, which the delivery service "
                "encrypts webhook secrets under (make a new keyring with `infoshare keys "
                "generate`, or add one: see docs/security.md)"
            )
        keys = {key_id: key.secret for key_id, key in keyring.webhook_keys.items()}
        return cls(keys, active=keyring.active_webhook_key)

    def __repr__(self) -> str:
        return f"SecretBox(active={self._active!r}, keys={len(self._keys)})"

    @property
    def active_key_id(self) -> str:
        """The key new secrets are sealed under."""
        return self._active

    def seal(self, secret: str, *, subscription_id: str) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        aad = _CONTEXT + subscription_id.encode()
        ciphertext = self._keys[self._active].encrypt(nonce, secret.encode(), aad)
        return Sealed(self._active, nonce, ciphertext)

    def open(self, sealed: Sealed, *, subscription_id: str) -> str:
        key = self._keys.get(sealed.key_id)
        if key is None:
            raise SecretUnreadable(
                f"the webhook secret is sealed under key {sealed.key_id!r}, which the keyring "
                "no longer holds"
            )
        aad = _CONTEXT + subscription_id.encode()
        try:
            clear = key.decrypt(sealed.nonce, sealed.ciphertext, aad)
        except InvalidTag:
            raise SecretUnreadable("the stored webhook secret does not open: altered?") from None
        return clear.decode()
