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
```
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
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


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    agency: str
    sha256: str
    scopes: frozenset[str]


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
        keys[key_id] = ApiKey(key_id, agency, digest, frozenset(str(s) for s in scopes))
    return tuple(keys.values())


def credential_for(
    bearer: str, *, agency_tokens: Mapping[str, str], api_keys: Iterable[ApiKey]
) -> AgencyCredential | None:
    """The credential a bearer token proves, or None. Every entry is compared (in constant
    time each), so how long it takes does not tell which entry nearly matched."""
    digest = token_hash(bearer)
    found = None
    for agency, expected in agency_tokens.items():
        if hmac.compare_digest(digest, expected):
            found = AgencyCredential(agency, f"{agency}-token", frozenset(SCOPES))
    for key in api_keys:
        if hmac.compare_digest(digest, key.sha256):
            found = AgencyCredential(key.agency, key.key_id, key.scopes)
    return found


def new_api_key(
    doc: dict[str, Any], *, agency: str, scopes: Iterable[str], name: str = ""
) -> tuple[str, str]:
    """Add a key for ``agency`` to the keyring document; returns (key id, the key). The key
    is shown once: only its hash is kept."""
    wanted = sorted(set(scopes))
    if not wanted or not set(wanted) <= set(SCOPES):
        raise ConfigurationError(f"scopes must be some of {', '.join(SCOPES)}")
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    label = f"-{name}" if name else ""
    key_id = f"{agency}{label}-{stamp}-{secrets.token_hex(3)}"
    token = secrets.token_urlsafe(32)
    row = {"id": key_id, "agency": agency, "sha256": token_hash(token), "scopes": wanted}
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
