"""Dry runs: what a protocol set (or a change to it) would share or withhold for a set of
events, side by side with the live set. Decides with throwaway keys and writes nothing."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from consent.core.consent import ConsentRecord, override_from
from consent.core.decide import Decision, EventFacts, decide
from consent.core.model import ProtocolSet
from consent.core.sealed import DataKeys
from consent.core.state import ProtectionPlan, SubjectState
from services.backbone.identifiers import nhs_number_problem, subject_identifier
from services.backbone.keyed import Key


@dataclass(frozen=True)
class SimEvent:
    facts: EventFacts
    state: SubjectState


@dataclass(frozen=True)
class Row:
    index: int
    event_type: str
    recipient: str
    protocol: str
    candidate: str  # "shared", "withheld (reason code)" or "-" when the set has no decision
    live: str | None
    fields: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.live is not None and self.live != self.candidate


class SimulationInputError(ValueError):
    """An input event that cannot be simulated; the message says which and why."""


def sim_event(doc: Mapping[str, Any], *, index: int) -> SimEvent:
    """One line of an events file: ``{"type", "source", "data", "date"?, "state"?}``;
    ``state`` may hold a ``protection_plan`` (authority, plan_id, category, start_date)."""
    try:
        data = doc["data"]
        nhs = str(data["subject"]["nhs_number"])
        if nhs_number_problem(nhs):
            raise SimulationInputError(f"event {index}: subject.nhs_number is not valid")
        plan = (doc.get("state") or {}).get("protection_plan")
        day = date.fromisoformat(doc["date"]) if "date" in doc else None
        facts = EventFacts(
            id=str(doc.get("id", f"sim-{index}")),
            type=str(doc["type"]),
            source_agency=str(doc["source"]),
            data=data,
            subject_id=subject_identifier(nhs_number=nhs),
            occurred=day,
            consents={
                (c.purpose, c.scope): c
                for c in map(ConsentRecord.from_json, doc.get("consents") or [])
            },
            override=override_from(data),
        )
        return SimEvent(facts, SubjectState(ProtectionPlan.from_json(plan) if plan else None))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, SimulationInputError):
            raise
        raise SimulationInputError(f"event {index}: {type(exc).__name__}: {exc}") from None


def _label(d: Decision) -> str:
    return d.outcome.value if d.outcome.value == "shared" else f"withheld ({d.reason_code})"


def _decisions(
    event: SimEvent,
    protocols: ProtocolSet,
    keys: Mapping[str, Key],
    token: Key,
    public: DataKeys,
) -> dict[tuple[str, str], Decision]:
    # Validity is judged today, as the live processor judges it.
    decisions = decide(
        event.facts, protocols, event.state, keys, token_key=token, recipient_keys=public
    )
    return {(d.recipient or "-", d.protocol.ref if d.protocol else "-"): d for d in decisions}


def simulate(
    events: Iterable[SimEvent], candidate: ProtocolSet, live: ProtocolSet | None = None
) -> list[Row]:
    """A row per event, recipient and protocol, in either set."""
    keys = _ThrowawayKeys()
    token = Key("simulation", os.urandom(64))
    recipients = {r.agency for s in (candidate, live or ()) for p in s for r in p.recipients}
    public = DataKeys({a: X25519PrivateKey.generate().public_key() for a in recipients})
    rows: list[Row] = []
    for index, event in enumerate(events, 1):
        new = _decisions(event, candidate, keys, token, public)
        old = _decisions(event, live, keys, token, public) if live is not None else {}
        for recipient, protocol in sorted(set(new) | set(old)):
            d = new.get((recipient, protocol))
            before = old.get((recipient, protocol))
            rows.append(
                Row(
                    index,
                    event.facts.type,
                    recipient,
                    protocol,
                    candidate=_label(d) if d else "-",
                    live=(_label(before) if before else "-") if live is not None else None,
                    fields=(
                        *d.fields_disclosed,
                        *d.fields_pseudonymised,
                        *d.fields_tokenised,
                        *d.fields_encrypted,
                    )
                    if d
                    else (),
                )
            )
    return rows


class _ThrowawayKeys(dict[str, Key]):
    """A fresh random pseudonym key for any recipient asked for: simulated pseudonyms are
    never the real ones."""

    def __missing__(self, agency: str) -> Key:
        key = Key(f"simulation-{agency}", os.urandom(32))
        self[agency] = key
        return key
