"""Keys by role: each process holds only the keys its role needs.

The operator's keyring (``infoshare keys generate``) holds every key. No component reads it
whole: each takes its role's part (``role_doc``), whether it is given its role's own file
(``infoshare keys split``, what the local stack does) or, by mistake, the whole keyring. So an
agency service never holds a pseudonym, token, audit or trace-seal key, and cannot reverse
a pseudonym, detokenise, open a sealed trace or re-sign the audit trail.

The table is docs/security.md's "Keys by role", and tests/unit/test_key_roles.py holds it.
Recipients' private keys are never on the hub at all: each recipient makes its own pair and
registers only the public half (``infoshare keys recipient new`` / ``trust``).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from services.backbone.errors import ConfigurationError
from services.backbone.keyring import verifying_rows


class Role(StrEnum):
    PROCESSOR = "processor"
    CONSENT = "consent"
    DELIVERY = "delivery"
    AUDIT = "audit"
    AGENCY = "agency"  # one agency's service: only that agency's part


ROLE_KEYS: Mapping[Role, frozenset[str]] = {
    # Decides: routes by child, pseudonymises and tokenises per recipient, seals fields to
    # recipients' public keys and the trace context, keys the audit record's subject.
    # Keys its audit ids (audit_id), so nobody can write a record ahead with a decision's id.
    Role.PROCESSOR: frozenset(
        {
            "routing",
            "audit_subject",
            "pseudonym",
            "token",
            "recipient_public",
            "trace_seal",
            "audit_id",
        }
    ),
    # Records consent by child (routing); re-identifies a token for an IG officer (token);
    # audits both by child (audit_subject). People sign in with the identity provider.
    Role.CONSENT: frozenset({"routing", "audit_subject", "token"}),
    # Serves recipients (their tokens' hashes), opens the trace seal for its spans, keeps
    # webhook secrets encrypted.
    Role.DELIVERY: frozenset({"agency_tokens", "trace_seal", "webhook_secret"}),
    # Chains and signs the trail; finds a child's records (audit_subject); agencies search
    # it with their tokens (IG officers sign in with the identity provider).
    Role.AUDIT: frozenset({"audit_subject", "audit_chain", "audit_signing", "agency_tokens"}),
    # Keys its events by child (routing) and checks its own API keys: nothing else.
    Role.AGENCY: frozenset({"routing", "agency_tokens", "agency_api_keys"}),
}


# The kinds whose keys, once rotated out (key_rotation.py), a role still uses: the audit
# service verifies older links and checkpoints (public halves only) and finds a child's
# older records; delivery opens trace seals made before; the processor keys each record's
# child under the older audit subject keys too, as aliases, so the trail links a child's
# records across the rotation. Nobody else: a recipient's new pseudonyms need no old key.
READS_OLDER: Mapping[Role, frozenset[str]] = {
    Role.AUDIT: frozenset({"audit_chain", "audit_signing", "audit_subject"}),
    Role.DELIVERY: frozenset({"trace_seal"}),
    Role.PROCESSOR: frozenset({"audit_subject"}),
    Role.CONSENT: frozenset(),
    Role.AGENCY: frozenset(),
}


def role_doc(doc: Mapping[str, Any], role: Role, agency: str | None = None) -> dict[str, Any]:
    """The part of a keyring document that ``role`` holds (for an agency service, only
    ``agency``'s own tokens and API keys)."""
    kept = {name: value for name, value in doc.items() if name in ROLE_KEYS[role]}
    older = doc.get("previous")
    if isinstance(older, Mapping):  # keys rotated out: only to a role that reads with them
        mine = {s: k for s, k in older.items() if str(s).partition(".")[0] in READS_OLDER[role]}
        signing = mine.pop("audit_signing", None)
        if signing:  # checking older checkpoints needs their public halves, nothing more
            kept["audit_verifying"] = verifying_rows(signing)
        if mine:
            kept["previous"] = mine
    if role is Role.PROCESSOR and isinstance(kept.get("token"), list):
        # It makes tokens with the active key; reversing old ones is the consent API's.
        kept["token"] = [t for t in kept["token"] if isinstance(t, Mapping) and t.get("active")]
    if role is not Role.AGENCY:
        return kept
    if not agency:
        raise ConfigurationError("an agency service's keys are its own agency's: give its id")
    tokens = kept.get("agency_tokens") or {}
    kept["agency_tokens"] = {agency: tokens[agency]} if agency in tokens else {}
    keys = kept.get("agency_api_keys") or []
    kept["agency_api_keys"] = [
        k for k in keys if isinstance(k, Mapping) and str(k.get("agency")) == agency
    ]
    return kept


def role_file_name(role: Role, agency: str | None = None) -> str:
    """Where ``infoshare keys split`` writes a role's keys, in the directory it is given."""
    return f"agency-{agency}.keys.yaml" if role is Role.AGENCY else f"{role}.keys.yaml"
