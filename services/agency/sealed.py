"""Opening a field the hub sealed for this agency (the recipient's side of
services/backbone/sealed.py), with the agency's own private key."""

from __future__ import annotations

from collections import OrderedDict

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.backbone.sealed import (
    DATA_KEY_BYTES,
    ENVELOPE_PREFIX,
    NONCE_BYTES,
    SUITE,
    SealError,
    data_key_info,
    envelope_aad,
    info,
    unb64,
    unwrap,
)

_REFUSED = "the value does not open for this recipient and field"


class DataKeyCache:
    """Unwrapped data keys by (key id, wrapped key), least recently used out first: one HPKE
    opening per window of the hub's, not one per value. Keyed by the wrapped key as well as
    its id, so a value that reuses a known id with another wrapped key cannot displace or
    borrow the real one."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._keys: OrderedDict[tuple[str, str], AESGCM] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, key_id: str, wrapped: str) -> AESGCM | None:
        found = self._keys.get((key_id, wrapped))
        if found is not None:
            self._keys.move_to_end((key_id, wrapped))
        return found

    def put(self, key_id: str, wrapped: str, aead: AESGCM) -> None:
        self._keys[(key_id, wrapped)] = aead
        while len(self._keys) > self._size:
            self._keys.popitem(last=False)


def open_sealed(
    private_key: X25519PrivateKey,
    *,
    recipient: str,
    path: str,
    sealed: str,
    cache: DataKeyCache | None = None,
) -> str:
    """The clear value of a field sealed to ``recipient`` at ``path``, in either format;
    SealError if it is not one, or does not open with this key, recipient and field."""
    if sealed.startswith(f"{ENVELOPE_PREFIX}."):
        keys = cache if cache is not None else DataKeyCache(1)
        return _open_envelope(private_key, recipient, path, sealed, keys)
    raw = unwrap(sealed)
    try:
        return SUITE.decrypt(raw, private_key, info=info(recipient, path)).decode()
    except (ValueError, InvalidTag):
        raise SealError(_REFUSED) from None


def _open_envelope(
    private_key: X25519PrivateKey, recipient: str, path: str, sealed: str, cache: DataKeyCache
) -> str:
    parts = sealed.split(".")
    if len(parts) != 4 or not all(parts[1:]):
        raise SealError("not a sealed infoshare value")
    _, key_id, wrapped, body = parts
    aead = cache.get(key_id, wrapped)
    try:
        if aead is None:
            data_key = SUITE.decrypt(
                unb64(wrapped), private_key, info=data_key_info(recipient, key_id)
            )
            if len(data_key) != DATA_KEY_BYTES:
                raise SealError(_REFUSED)
            aead = AESGCM(data_key)
            cache.put(key_id, wrapped, aead)
        raw = unb64(body)
        nonce, ciphertext = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        clear = aead.decrypt(nonce, ciphertext, envelope_aad(recipient, path, key_id))
        return clear.decode()
    except (ValueError, InvalidTag):
        raise SealError(_REFUSED) from None
