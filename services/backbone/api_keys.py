"""Agency API keys with scopes: who may call an agency service, and for what.

Every agency has its API token (``agency_tokens``: every scope). An agency can also be
given narrower keys (``agency_api_keys``), e.g. one its school MIS uses that may only
publish, and one its safeguarding lead's viewer uses that may only read the inbox. The
keyring holds each key's SHA-256 hash, never the key; ``infoshare keys api-key issue``
prints a new key once.

```yaml
agency_api_keys:
  - id: school-oakfield-mis-20261126
    agency: school-oakfield
    sha256: 5e88...
    scopes: [events:publish]
    expires: 2027-03-01T00:00:00+00:00
```

A key stops working at its expiry (``expires``, given at issue: 90 days unless said), and
when it is revoked: services read their keys again when the file changes, so neither
needs a restart (key_reload.py).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.backbone.errors import ConfigurationError

PUBLISH = "events:publish"
READ_INBOX = "inbox:read"
SCOPES = (PUBLISH, READ_INBOX)
_ID_RE = re.compile(r"[a-z0-9][a-z0-9.-]{0,79}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class AgencyCredential:
    """Who a bearer token belongs to: an agency, the key's id, and what it may do."""

    agency: str
    key_id: str
    scopes: frozenset[str]


DEFAULT_TTL = timedelta(days=90)
MAX_TTL = timedelta(days=366)


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    agency: str
    sha256: str
    scopes: frozenset[str]
    expires: datetime | None = None  # None: a key issued before keys expired (see list)

    def live(self, now: datetime) -> bool:
        return self.expires is None or now < self.expires


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_api_keys(rows: Any) -> tuple[ApiKey, ...]:
    """The ``agency_api_keys`` list of a keyring; ConfigurationError names a bad entry."""
    if rows is None:
        return ()
    if not isinstance(rows, list):
        raise ConfigurationError("keyring 'agency_api_keys' is a list of keys")
    keys: dict[str, ApiKey] = {}
    for i, raw in enumerate(rows):
        where = f"keyring agency_api_keys[{i}]"
        if not isinstance(raw, Mapping):
            raise ConfigurationError(f"{where} is not a mapping")
        key_id, agency, digest = (str(raw.get(k, "")) for k in ("id", "agency", "sha256"))
        scopes = raw.get("scopes")
        if not _ID_RE.fullmatch(key_id):
            raise ConfigurationError(f"{where}: id must be lower case letters, digits, . and -")
        if key_id in keys:
            raise ConfigurationError(f"{where}: id {key_id!r} appears twice")
        if not agency:
            raise ConfigurationError(f"{where}: no agency")
        if not _SHA256_RE.fullmatch(digest):
            raise ConfigurationError(f"{where}: sha256 must be 64 lower-case hex digits")
        if not isinstance(scopes, list) or not scopes or not set(scopes) <= set(SCOPES):
            raise ConfigurationError(f"{where}: scopes must be a non-empty list of {SCOPES}")
        keys[key_id] = ApiKey(
            key_id, agency, digest, frozenset(str(s) for s in scopes), parse_expiry(raw, where)
        )
    return tuple(keys.values())


def parse_expiry(raw: Mapping[str, Any], where: str) -> datetime | None:
    value = raw.get("expires")
    if value is None:
        return None
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigurationError(f"{where}: expires is not an ISO 8601 date-time") from None
    if when.tzinfo is None:
        raise ConfigurationError(f"{where}: expires needs a UTC offset")
    return when


def credential_for(
    bearer: str,
    *,
    agency_tokens: Mapping[str, str],
    api_keys: Iterable[ApiKey],
    now: datetime | None = None,
) -> AgencyCredential | None:
    """The credential a bearer token proves, or None (an expired key proves nothing).
    Every entry is compared (in constant time each), so how long it takes does not tell
    which entry nearly matched."""
    digest = token_hash(bearer)
    moment = now or datetime.now(UTC)
    found = None
    for agency, expected in agency_tokens.items():
        if hmac.compare_digest(digest, expected):
            found = AgencyCredential(agency, f"{agency}-token", frozenset(SCOPES))
    for key in api_keys:
        if hmac.compare_digest(digest, key.sha256) and key.live(moment):
            found = AgencyCredential(key.agency, key.key_id, key.scopes)
    return found


def new_api_key(
    doc: dict[str, Any],
    *,
    agency: str,
    scopes: Iterable[str],
    name: str = "",
    ttl: timedelta = DEFAULT_TTL,
    now: datetime | None = None,
) -> tuple[str, str]:
    """Add a key for ``agency`` to the keyring document, lasting ``ttl``; returns (key id,
    the key). The key is shown once: only its hash is kept."""
    wanted = sorted(set(scopes))
    if not wanted or not set(wanted) <= set(SCOPES):
        raise ConfigurationError(f"scopes must be some of {', '.join(SCOPES)}")
    if not timedelta(0) < ttl <= MAX_TTL:
        raise ConfigurationError(f"a key lasts more than nothing and at most {MAX_TTL.days} days")
    issued = now or datetime.now(UTC)
    stamp = issued.strftime("%Y%m%d%H%M%S")
    label = f"-{name}" if name else ""
    key_id = f"{agency}{label}-{stamp}-{secrets.token_hex(3)}"
    token = secrets.token_urlsafe(32)
    row = {
        "id": key_id,
        "agency": agency,
        "sha256": token_hash(token),
        "scopes": wanted,
        "expires": (issued + ttl).isoformat(timespec="seconds"),
    }
    doc["agency_api_keys"] = [*(doc.get("agency_api_keys") or []), row]
    parse_api_keys(doc["agency_api_keys"])  # never write a keyring that would not load
    return key_id, token


def revoke_api_key(doc: dict[str, Any], key_id: str) -> None:
    """Remove a key from the keyring document: it stops working when services reload."""
    rows = doc.get("agency_api_keys") or []
    kept = [r for r in rows if str(r.get("id")) != key_id]
    if len(kept) == len(rows):
        raise ConfigurationError(f"no agency API key {key_id!r}")
    doc["agency_api_keys"] = kept
