"""The keyring: the secrets behind routing keys, audit subject keys and pseudonyms.

Stored as a YAML file (mode 0600) that ``infoshare keys generate`` writes. There are no
default keys: a service that needs a key refuses to start without it, and a secret that is
short or looks like a placeholder is refused too. Secrets never appear in a repr or a log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from services.backbone.api_keys import (
    AgencyCredential,
    ApiKey,
    credential_for,
    parse_api_keys,
    parse_expiry,
)
from services.backbone.errors import ConfigurationError
from services.backbone.keyed import Key

MIN_SECRET_BYTES = 32
_PLACEHOLDERS = ("change", "secret", "example", "default", "placeholder", "xxxx", "todo")


@dataclass(frozen=True)
class Keyring:
    routing: Key | None
    audit_subject: Key | None
    pseudonym: Mapping[str, Key]
    tokens: Mapping[str, Key] = field(default_factory=dict)  # by key id, retired ones gone
    active_token: str | None = None  # the key id new tokens are made with
    agency_tokens: Mapping[str, str] = field(default_factory=dict)  # agency id -> sha256
    agency_token_expiry: Mapping[str, datetime] = field(default_factory=dict)  # if it expires
    recipient_public: Mapping[str, X25519PublicKey] = field(default_factory=dict)
    audit_chain: Key | None = None  # HMAC key of the audit trail's hash chain
    audit_signing: Key | None = None  # Ed25519 seed that signs audit checkpoints
    # Seals the event's trace context in deliveries: the processor and the delivery service
    # only, never an agency service (telemetry.TraceSeal).
    trace_seal: Key | None = None
    # Keys the processor's audit ids (audit_contract.audit_id_for): the processor's alone.
    audit_id: Key | None = None
    agency_api_keys: tuple[ApiKey, ...] = ()  # narrower keys of agencies (api_keys.py)
    # AES-256-GCM keys the delivery service encrypts webhook secrets under, by key id: the
    # active one seals, older ones still open what they sealed.
    webhook_keys: Mapping[str, Key] = field(default_factory=dict)
    active_webhook_key: str | None = None
    # Keys rotated out of a one-key slot ("audit_subject", "pseudonym.<agency>", ...), newest
    # first, kept to read what they made (key_rotation.py): never used for anything new.
    previous: Mapping[str, tuple[Key, ...]] = field(default_factory=dict)
    # Older audit signing keys' public halves only, oldest first: what the audit service is
    # given to check older checkpoints with (key_roles.py), never their private seeds.
    audit_verifying: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)

    def keys_of(self, slot: str) -> tuple[Key, ...]:
        """Every key of a one-key ``slot``: the active one first (if any), then the older
        ones kept for reading, newest first."""
        kind, _, agency = slot.partition(".")
        active = self.pseudonym.get(agency) if kind == "pseudonym" else getattr(self, kind)
        return ((active,) if active is not None else ()) + tuple(self.previous.get(slot, ()))

    def audit_verifying_keys(self) -> dict[str, Ed25519PublicKey]:
        """The public half of every audit signing key by key id, oldest first, the active
        one last (older checkpoints are checked with the key that signed them)."""
        older = {
            k.key_id: _signing_key(k).public_key() for k in self.previous.get("audit_signing", ())
        }
        found = {**self.audit_verifying, **dict(reversed(older.items()))}
        if self.audit_signing is not None:
            found[self.audit_signing.key_id] = _signing_key(self.audit_signing).public_key()
        return found

    def live_agency_tokens(self, now: datetime | None = None) -> Mapping[str, str]:
        """The agencies' own tokens' hashes, those expired left out."""
        moment = now or datetime.now(UTC)
        expiry = self.agency_token_expiry
        return {
            a: h for a, h in self.agency_tokens.items() if a not in expiry or moment < expiry[a]
        }

    def agency(self, bearer: str) -> str | None:
        """The agency an API token belongs to (recipients of the delivery service), or None."""
        return _holder(bearer, self.live_agency_tokens())

    def agency_credential(self, bearer: str) -> AgencyCredential | None:
        """The agency, key and scopes a bearer token proves (agency services), or None."""
        return credential_for(
            bearer, agency_tokens=self.live_agency_tokens(), api_keys=self.agency_api_keys
        )

    def token_key(self) -> Key | None:
        """The key new tokens are made with (rotation adds a new active key and keeps the
        old ones, so tokens already given out can still be reversed)."""
        return self.tokens.get(self.active_token) if self.active_token else None

    def require_routing(self) -> Key:
        if self.routing is None:
            raise ConfigurationError("the keyring has no 'routing' key")
        return self.routing

    def require_audit_subject(self) -> Key:
        if self.audit_subject is None:
            raise ConfigurationError("the keyring has no 'audit_subject' key")
        return self.audit_subject

    def require_audit_id(self) -> Key:
        if self.audit_id is None:
            raise ConfigurationError(
                "the keyring has no 'audit_id' key (add it with `infoshare keys add-audit`)"
            )
        return self.audit_id

    def require_audit_chain(self) -> Key:
        if self.audit_chain is None:
            raise ConfigurationError(
                "the keyring has no 'audit_chain' key (made by `infoshare keys generate`)"
            )
        return self.audit_chain

    def require_audit_signing(self) -> tuple[str, Ed25519PrivateKey]:
        """The key id and Ed25519 private key that sign audit checkpoints."""
        if self.audit_signing is None:
            raise ConfigurationError(
                "the keyring has no 'audit_signing' key (made by `infoshare keys generate`)"
            )
        return self.audit_signing.key_id, _signing_key(self.audit_signing)

    def require_rule_keys(self, *, tokenising: set[str], encrypting: set[str]) -> None:
        """Refuse a protocol set whose rules need keys the keyring lacks: an active token key
        for tokenise rules, each recipient's public key for encrypt rules."""
        if tokenising and self.token_key() is None:
            raise ConfigurationError(
                "protocols tokenise fields for "
                + ", ".join(sorted(tokenising))
                + " but the keyring has no active token key"
            )
        missing = sorted(encrypting - set(self.recipient_public))
        if missing:
            raise ConfigurationError(
                "protocols encrypt fields for "
                + ", ".join(missing)
                + " but the keyring has no public key for them"
            )

    def require_pseudonym_keys(self, agencies: Iterable[str]) -> Mapping[str, Key]:
        missing = sorted(set(agencies) - set(self.pseudonym))
        if missing:
            raise ConfigurationError("the keyring has no pseudonym key for: " + ", ".join(missing))
        return self.pseudonym


def _signing_key(key: Key) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(key.secret[:32])


def _holder(bearer: str, table: Mapping[str, str]) -> str | None:
    digest = hashlib.sha256(bearer.encode()).hexdigest()
    found = None
    for name, expected in table.items():  # compare with every entry: no early exit to time
        if hmac.compare_digest(digest, expected):
            found = name
    return found


def _looks_like_placeholder(secret: bytes) -> bool:
    """Typed text ("change-me-please...") or a repeated pattern, not random bytes. Random
    32 bytes almost always hold 25+ distinct values and are rarely all printable ASCII."""
    lowered = secret.lower()
    if secret.isascii() and any(word.encode() in lowered for word in _PLACEHOLDERS):
        return True
    return len(set(secret)) < 12


def _parse_key(name: str, raw: Any) -> Key:
    if not isinstance(raw, Mapping) or "id" not in raw or "secret" not in raw:
        raise ConfigurationError(f"keyring entry {name!r} needs 'id' and 'secret'")
    text = str(raw["secret"])
    try:
        secret: bytes | None = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        secret = None
    usable = (
        secret is not None
        and len(secret) >= MIN_SECRET_BYTES
        and not _looks_like_placeholder(secret)
    )
    # Random base64 may spell "ToDo" by chance; only text that is not a usable secret anyway
    # is called a placeholder for the words it holds.
    if not usable and any(word in text.lower() for word in _PLACEHOLDERS):
        raise ConfigurationError(f"keyring entry {name!r} holds a placeholder, not a secret")
    if secret is None:
        raise ConfigurationError(f"keyring entry {name!r}: secret is not base64")
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"keyring entry {name!r}: secret has {len(secret)} bytes, "
            f"at least {MIN_SECRET_BYTES} are required"
        )
    if _looks_like_placeholder(secret):
        raise ConfigurationError(f"keyring entry {name!r} holds a placeholder, not a secret")
    return Key(key_id=str(raw["id"]), secret=secret)


def parse_keyring(doc: Any) -> Keyring:
    if not isinstance(doc, Mapping):
        raise ConfigurationError("the keyring file is not a YAML mapping")
    pseudonym_doc = doc.get("pseudonym") or {}
    if not isinstance(pseudonym_doc, Mapping):
        raise ConfigurationError("keyring 'pseudonym' must map agency ids to keys")
    return Keyring(
        routing=_parse_key("routing", doc["routing"]) if "routing" in doc else None,
        audit_subject=(
            _parse_key("audit_subject", doc["audit_subject"]) if "audit_subject" in doc else None
        ),
        pseudonym={
            str(agency): _parse_key(f"pseudonym.{agency}", raw)
            for agency, raw in pseudonym_doc.items()
        },
        **_parse_tokens(doc.get("token") or []),
        **_parse_webhook_keys(doc.get("webhook_secret") or []),
        **_parse_agency_tokens(doc.get("agency_tokens") or {}),
        recipient_public=_parse_public(doc.get("recipient_public") or {}),
        audit_chain=_parse_key("audit_chain", doc["audit_chain"]) if "audit_chain" in doc else None,
        audit_signing=(
            _parse_key("audit_signing", doc["audit_signing"]) if "audit_signing" in doc else None
        ),
        agency_api_keys=parse_api_keys(doc.get("agency_api_keys")),
        trace_seal=_parse_key("trace_seal", doc["trace_seal"]) if "trace_seal" in doc else None,
        audit_id=_parse_key("audit_id", doc["audit_id"]) if "audit_id" in doc else None,
        previous=_parse_previous(doc.get("previous") or {}),
        audit_verifying=_parse_verifying(doc.get("audit_verifying") or []),
    )


def _parse_verifying(rows: Any) -> dict[str, Ed25519PublicKey]:
    if not isinstance(rows, list):
        raise ConfigurationError("keyring 'audit_verifying' is a list of {id, public}")
    found = {}
    for i, row in enumerate(rows):
        try:
            raw = base64.b64decode(str(row["public"]), validate=True)
            found[str(row["id"])] = Ed25519PublicKey.from_public_bytes(raw)
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise ConfigurationError(
                f"keyring 'audit_verifying[{i}]' is not a public key"
            ) from None
    return found


def verifying_rows(signing_rows: Iterable[Any]) -> list[dict[str, str]]:
    """Older audit signing keys (``previous.audit_signing``, newest first) as their public
    halves only, oldest first: the audit service's part of them."""
    rows = []
    for i, raw in enumerate(signing_rows):
        key = _parse_key(f"previous.audit_signing[{i}]", raw)
        public = _signing_key(key).public_key().public_bytes_raw()
        rows.append({"id": key.key_id, "public": _b64(public)})
    return list(reversed(rows))


# One-key slots a key can be rotated out of ("pseudonym" per agency: "pseudonym.<agency>").
SLOTS = (
    "routing",
    "audit_subject",
    "audit_chain",
    "audit_signing",
    "audit_id",
    "trace_seal",
    "pseudonym",
)


def _parse_previous(doc: Any) -> dict[str, tuple[Key, ...]]:
    if not isinstance(doc, Mapping):
        raise ConfigurationError("keyring 'previous' maps key slots to lists of older keys")
    found = {}
    for slot, rows in doc.items():
        if str(slot).partition(".")[0] not in SLOTS or not isinstance(rows, list):
            raise ConfigurationError(f"keyring 'previous.{slot}' is not a list of older keys")
        found[str(slot)] = tuple(
            _parse_key(f"previous.{slot}[{i}]", row) for i, row in enumerate(rows)
        )
    return found


def _parse_agency_tokens(rows: Any) -> dict[str, Any]:
    """Each agency's token hash: a string (made before tokens expired) or
    ``{sha256: ..., expires: ...}``."""
    if not isinstance(rows, Mapping):
        raise ConfigurationError("keyring 'agency_tokens' maps agency ids to token hashes")
    hashes, expiry = {}, {}
    for agency, row in rows.items():
        where = f"keyring agency_tokens.{agency}"
        if isinstance(row, Mapping):
            hashes[str(agency)] = str(row.get("sha256", ""))
            when = parse_expiry(row, where)
            if when is not None:
                expiry[str(agency)] = when
        else:
            hashes[str(agency)] = str(row)
    return {"agency_tokens": hashes, "agency_token_expiry": expiry}


AGENCY_TOKEN_TTL = timedelta(days=365)


def new_agency_token(doc: dict[str, Any], agency: str, *, ttl: timedelta = AGENCY_TOKEN_TTL) -> str:
    """Give ``agency`` a new token of its own, lasting ``ttl``, in place of any it had;
    returns it (the keyring keeps only its hash)."""
    if not timedelta(0) < ttl <= timedelta(days=366):
        raise ConfigurationError("a token lasts more than nothing and at most 366 days")
    token = secrets.token_urlsafe(32)
    rows = dict(doc.get("agency_tokens") or {})
    expires = (datetime.now(UTC) + ttl).isoformat(timespec="seconds")
    rows[agency] = {"sha256": hashlib.sha256(token.encode()).hexdigest(), "expires": expires}
    doc["agency_tokens"] = rows
    return token


def _parse_public(rows: Any) -> dict[str, X25519PublicKey]:
    if not isinstance(rows, Mapping):
        raise ConfigurationError("keyring 'recipient_public' maps agency ids to public keys")
    keys = {}
    for agency, text in rows.items():
        try:
            keys[str(agency)] = X25519PublicKey.from_public_bytes(base64.b64decode(str(text)))
        except ValueError as exc:
            raise ConfigurationError(f"keyring recipient_public.{agency}: {exc}") from None
    return keys


def _parse_tokens(rows: Any) -> dict[str, Any]:
    if not isinstance(rows, list):
        raise ConfigurationError("keyring 'token' is a list of keys")
    tokens = {}
    active = [str(r.get("id")) for r in rows if isinstance(r, Mapping) and r.get("active") is True]
    if len(active) > 1:
        raise ConfigurationError("keyring 'token': more than one key is marked active")
    for i, raw in enumerate(rows):
        key = _parse_key(f"token[{i}]", raw)
        if key.key_id in tokens:
            raise ConfigurationError(f"keyring 'token': id {key.key_id!r} appears twice")
        if len(key.secret) not in (32, 48, 64):
            raise ConfigurationError(
                f"keyring entry 'token[{i}]': AES-SIV needs 32, 48 or 64 bytes"
            )
        tokens[key.key_id] = key
    return {"tokens": tokens, "active_token": active[0] if active else None}


def _parse_webhook_keys(rows: Any) -> dict[str, Any]:
    """The ``webhook_secret`` list, like ``token``'s: exactly one active, 32-byte keys."""
    if not isinstance(rows, list):
        raise ConfigurationError("keyring 'webhook_secret' is a list of keys")
    keys = {}
    for i, raw in enumerate(rows):
        key = _parse_key(f"webhook_secret[{i}]", raw)
        if key.key_id in keys:
            raise ConfigurationError(f"keyring 'webhook_secret': id {key.key_id!r} appears twice")
        if len(key.secret) != 32:
            raise ConfigurationError(f"keyring entry 'webhook_secret[{i}]': AES-256 needs 32 bytes")
        keys[key.key_id] = key
    active = [str(r.get("id")) for r in rows if isinstance(r, Mapping) and r.get("active") is True]
    if keys and len(active) != 1:
        raise ConfigurationError("keyring 'webhook_secret': exactly one key must be active")
    return {"webhook_keys": keys, "active_webhook_key": active[0] if active else None}


def load_keyring(path: Path | None) -> Keyring:
    """Load and check a keyring file; a missing or bad file is a ConfigurationError."""
    return parse_keyring(keyring_doc(read_keyring_text(path), f"the keyring file {path}"))


def read_keyring_text(path: Path | None) -> str:
    if path is None:
        raise ConfigurationError(
            "no keyring configured: set INFOSHARE_KEYRING_FILE or INFOSHARE_KEYRING_YAML "
            "(create one with `infoshare keys generate`)"
        )
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the keyring file {path}: {exc.strerror}") from exc


def keyring_from_text(text: str, origin: str) -> Keyring:
    return parse_keyring(keyring_doc(text, origin))


def keyring_doc(text: str, origin: str) -> Any:
    """The keyring's YAML document, unchecked (parse_keyring checks it)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigurationError(f"{origin} is not valid YAML") from None  # never echo secrets


AUDIT_KEYS = {
    "audit_chain": "audit-chain",
    "audit_signing": "audit-signing",
    "audit_id": "audit-id",
}


def add_audit_keys(path: Path) -> list[str]:
    """Add the audit trail's chain and signing keys to a keyring made before they existed;
    every other key stays as it is. Returns the names added (none if it has both)."""
    doc = read_keyring_doc(path)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    added = [name for name in AUDIT_KEYS if name not in doc]
    for name in added:
        doc[name] = new_key(AUDIT_KEYS[name], stamp)
    if added:
        parse_keyring(doc)  # never write a keyring that would not load
        write_private(path, dump_keyring(doc))
    return added


def read_keyring_doc(path: Path) -> dict[str, Any]:
    keyring = load_keyring(path)  # checks it first
    del keyring
    doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return doc


def new_key(purpose: str, stamp: str, size: int = MIN_SECRET_BYTES) -> dict[str, str]:
    secret = base64.b64encode(secrets.token_bytes(size)).decode()
    # The random suffix keeps ids unique when two keys are made in the same second.
    return {"id": f"{purpose}-{stamp}-{secrets.token_hex(3)}", "secret": secret}


def write_private(path: Path, text: str) -> None:
    """Write a secret file readable by its owner only, replacing any file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.new")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a file that already exists
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    staging.replace(path)


def dump_keyring(doc: Mapping[str, Any]) -> str:
    head = "# infoshare keyring: secrets. Never commit, never share, never log.\n"
    return head + yaml.safe_dump(dict(doc), sort_keys=False)


def generate_keyring(path: Path, agencies: Iterable[str], *, overwrite: bool = False) -> Path:
    """Write a fresh keyring with random keys for routing, audit, tokens and every agency.

    Beside it: ``agency-tokens/<agency>.token``, each agency's API token (hashed in the
    keyring), which an agency receives over a secure channel. People hold no token here:
    they sign in as themselves with the identity provider (services/backbone/people.py).
    No recipient's private key: each recipient makes its own pair and sends only the public
    half, which ``infoshare keys trust`` registers (recipient_keys.py).
    """
    if path.exists() and not overwrite:
        raise ConfigurationError(f"{path} exists; refusing to overwrite keys without --force")
    agencies = list(agencies)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    doc_tokens: dict[str, Any] = {}
    agency_tokens = {agency: new_agency_token(doc_tokens, agency) for agency in agencies}
    doc = {
        "routing": new_key("routing", stamp),
        "audit_subject": new_key("audit-subject", stamp),
        **{name: new_key(purpose, stamp) for name, purpose in AUDIT_KEYS.items()},
        "trace_seal": new_key("trace-seal", stamp),
        "pseudonym": {agency: new_key(f"pseudonym-{agency}", stamp) for agency in agencies},
        "token": [{**new_key("token", stamp, 64), "active": True}],  # AES-256-SIV
        "webhook_secret": [{**new_key("webhook-secret", stamp), "active": True}],  # AES-GCM
        "recipient_public": {},  # registered as recipients send them (keys trust)
        "agency_tokens": doc_tokens["agency_tokens"] if agencies else {},  # hashed, expiring
    }
    write_private(path, dump_keyring(doc))
    for agency, token in agency_tokens.items():
        write_private(path.parent / "agency-tokens" / f"{agency}.token", token + "\n")
    return path


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
