"""Rotating keys: a new key for new work, older ones kept to read what they made.

Two shapes of key live in the keyring:

- **Lists with one active key** (``token``, ``webhook_secret``): a new key is added and
  marked active; the others stay in the list, inactive, to reverse tokens already given out
  and open webhook secrets already stored.
- **One-key slots** (``audit_subject``, ``audit_chain``, ``audit_signing``, ``audit_id``,
  ``trace_seal``, ``pseudonym.<agency>``): the new key takes the slot and the old one moves to
  ``previous.<slot>``, newest first. Readers use the older ones (``Keyring.keys_of``): the
  audit service finds a child's records under every subject key, checks each checkpoint
  with the key that signed it and follows the chain across the change of key; delivery
  opens trace seals made before. A recipient's pseudonyms change with its key, by design:
  that is what rotating it is for (new records no longer link to old ones).

The routing key is not rotated: every child's events, consent records, plans and person
index entries are placed and found by it, so a new one needs all of them re-keyed while
nothing runs. docs/security.md says so, and what to do if it leaks.

Nothing here reaches a running process by itself: ``refresh_role_files`` (the CLI calls it)
rewrites the role files, which the services re-read, or a restart picks the change up.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.backbone.errors import ConfigurationError
from services.backbone.keyring import (
    dump_keyring,
    new_key,
    parse_keyring,
    read_keyring_doc,
    write_private,
)

# Kinds kept as a list with one active key, and their size in bytes.
LISTED = {"token": 64, "webhook_secret": 32}
# Kinds of one key a slot, and the word their key ids begin with.
SLOTTED = {
    "audit_subject": "audit-subject",
    "audit_chain": "audit-chain",
    "audit_signing": "audit-signing",
    "audit_id": "audit-id",
    "trace_seal": "trace-seal",
    "pseudonym": "pseudonym",
}
# What no one may throw away: older audit keys are how old records and checkpoints verify.
KEPT_FOR_GOOD = ("audit_chain", "audit_signing")
NOT_ROTATED = {
    "routing": "the routing key places and finds every child's events, consent records, "
    "plans and person index entries; a new one means re-keying all of them with everything "
    "stopped, which infoshare does not do online (docs/security.md, 'Rotating keys')",
}


def rotate_key(path: Path, kind: str, agency: str | None = None) -> str:
    """Give ``kind`` (for ``pseudonym``, ``agency``'s) a new active key; older ones stay to
    read with. Returns the new key's id. The keyring is checked before it is written."""
    if kind in NOT_ROTATED:
        raise ConfigurationError(f"{kind} is not rotated: {NOT_ROTATED[kind]}")
    if kind not in LISTED and kind not in SLOTTED:
        raise ConfigurationError(
            f"no key kind {kind!r}; kinds that rotate: {', '.join([*LISTED, *SLOTTED])}"
        )
    if (kind == "pseudonym") != bool(agency):
        raise ConfigurationError("name the agency whose pseudonym key rotates (and only then)")
    doc = read_keyring_doc(path)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    if kind in LISTED:
        key = new_key(kind.replace("_", "-"), stamp, LISTED[kind])
        rows = [{k: v for k, v in row.items() if k != "active"} for row in doc.get(kind) or []]
        doc[kind] = [*rows, {**key, "active": True}]
    else:
        key = _into_slot(doc, kind, agency, stamp)
    parse_keyring(doc)  # never write a keyring that would not load
    write_private(path, dump_keyring(doc))
    return key["id"]


def _into_slot(doc: dict[str, Any], kind: str, agency: str | None, stamp: str) -> dict[str, str]:
    holder: dict[str, Any] = doc if agency is None else dict(doc.get("pseudonym") or {})
    name = agency or kind
    slot = f"pseudonym.{agency}" if agency else kind
    if name not in holder:
        raise ConfigurationError(f"the keyring has no {slot} key to rotate")
    key = new_key(f"{SLOTTED[kind]}-{agency}" if agency else SLOTTED[kind], stamp)
    older = dict(doc.get("previous") or {})
    older[slot] = [holder[name], *(older.get(slot) or [])]
    holder[name] = key
    doc["previous"] = older
    if agency:
        doc["pseudonym"] = holder
    return key


def retire_key(path: Path, key_id: str) -> str:
    """Remove an older key for good (what it made can no longer be read); returns its kind.
    Refused for an active key, and for audit keys, which old records verify with."""
    doc = read_keyring_doc(path)
    for kind in LISTED:
        rows = doc.get(kind) or []
        row = next((r for r in rows if str(r.get("id")) == key_id), None)
        if row is not None:
            if row.get("active"):
                raise ConfigurationError(f"{key_id} is the active {kind} key: rotate first")
            doc[kind] = [r for r in rows if r is not row]
            write_private(path, dump_keyring(doc))
            return kind
    older = dict(doc.get("previous") or {})
    for slot, rows in older.items():
        if any(str(r.get("id")) == key_id for r in rows):
            if slot in KEPT_FOR_GOOD:
                raise ConfigurationError(
                    f"{key_id} is an {slot} key: older records and checkpoints verify with "
                    "it, so it is kept for good"
                )
            kept = [r for r in rows if str(r.get("id")) != key_id]
            if kept:
                older[slot] = kept
            else:
                del older[slot]
            doc["previous"] = older
            write_private(path, dump_keyring(doc))
            return str(slot)
    now = parse_keyring(doc)
    slots = (
        now.routing,
        now.audit_subject,
        now.audit_chain,
        now.audit_signing,
        now.audit_id,
        now.trace_seal,
    )
    if key_id in {k.key_id for k in (*slots, *now.pseudonym.values()) if k is not None}:
        raise ConfigurationError(f"{key_id} is an active key: rotate first")
    raise ConfigurationError(f"no older key {key_id!r} in {path}")
