"""People's passwords for the development identity provider's login page: kept only as
scrypt hashes (a random salt each), checked in constant time, and at the same cost whether
the person exists, has a password, or neither, so the page does not tell who is known."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# scrypt's work factors (RFC 7914): 2**14 x 8 x 1 is 16 MiB and tens of milliseconds a try.
N, R, P = 2**14, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32
MAX_MEM = 64 * 1024 * 1024  # bytes scrypt may use: a hash asking for more is refused
MAX_PASSWORD = 1024  # characters; a longer one is refused, never hashed
SCHEME = "scrypt"
# Checked against when there is no hash to check (an unknown person, or one without a
# password), so a refusal costs what a wrong password costs. Its password is unknowable:
# the "hash" is random bytes, not the hash of anything.
_NOBODY = f"{SCHEME}${N}${R}${P}$h3HG_zMI4QnbjP6KfQx4eg$90_KbYPHoWlqRFANyTpoqk0RnUHPEgvR0PPmdPZUMA0"


class PasswordError(ValueError):
    """A password that cannot be kept (empty, or too long)."""


def new_password() -> str:
    """A random password for a person (about 128 bits), to be shown to them once."""
    return secrets.token_urlsafe(16)


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64url, unpadded) of ``password`` with a fresh salt."""
    if not password or len(password) > MAX_PASSWORD:
        raise PasswordError(f"a password is 1 to {MAX_PASSWORD} characters")
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, N, R, P)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from. ``None`` (no such person, or
    no password) costs the same as a wrong password and is always False."""
    candidate = password if 0 < len(password) <= MAX_PASSWORD else ""
    try:
        scheme, n, r, p, salt, expected = (stored or _NOBODY).split("$")
        if scheme != SCHEME:
            raise ValueError(scheme)
        digest = _scrypt(candidate or "-", _unb64(salt), int(n), int(r), int(p))
        matches = hmac.compare_digest(digest, _unb64(expected))
    except ValueError:  # a hash this module did not write: nobody logs in with it
        _scrypt("-", b"\0" * SALT_BYTES, N, R, P)
        return False
    return matches and stored is not None and bool(candidate)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    secret = password.encode("utf-8")
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=MAX_MEM, dklen=HASH_BYTES)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (ValueError, TypeError):
        raise ValueError("not base64url") from None
