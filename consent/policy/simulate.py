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
from consent.core.decide import Decision, EventFacts, Outcome, ReasonCode, decide
from consent.core.model import ProtocolSet
from consent.core.sealed import DataKeys
from consent.core.state import ProtectionPlan, SubjectState
from services.backbone.identifiers import nhs_number_problem, subject_identifier
from services.backbone.keyed import Key


@dataclass(frozen=True)
class SimEvent:
    facts: EventFacts
    state: SubjectState


@dataclass(slots=True)
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
    """An input event that cannot be simulated; the message says which and why, ``reason``
    only why."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


def sim_event(doc: Mapping[str, Any], *, index: int) -> SimEvent:
    """One line of an events file: ``{"type", "source", "data", "date"?, "state"?}``;
    ``state`` may hold a ``protection_plan`` (authority, plan_id, category, start_date)."""
    try:
        data = doc["data"]
        nhs = str(data["subject"]["nhs_number"])
        if nhs_number_problem(nhs):
            why = "subject.nhs_number is not valid"
            raise SimulationInputError(f"event {index}: {why}", reason=why)
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
        why = f"{type(exc).__name__}: {exc}"
        raise SimulationInputError(f"event {index}: {why}", reason=why) from None


_LABELS = {
    code: "shared" if code.value.startswith("shared.") else f"withheld ({code.value})"
    for code in ReasonCode
}


def _label(d: Decision) -> str:
    return "shared" if d.outcome is Outcome.SHARED else _LABELS[d.reason_code]


class Simulator:
    """Decides events under a candidate set and, if given, the live set: dry-run decisions
    (consent/core/decide.py) with throwaway keys, so nothing real is keyed or sealed."""

    def __init__(self, candidate: ProtocolSet, live: ProtocolSet | None = None) -> None:
        self.candidate, self.live = candidate, live
        self._keys = _ThrowawayKeys()
        self._token = Key("simulation", os.urandom(64))
        recipients = {r.agency for s in (candidate, live or ()) for p in s for r in p.recipients}
        self._public = DataKeys({a: X25519PrivateKey.generate().public_key() for a in recipients})

    def _decisions(
        self, event: SimEvent, protocols: ProtocolSet
    ) -> dict[tuple[str, str], Decision]:
        # Validity is judged today, as the live processor judges it.
        decisions = decide(
            event.facts,
            protocols,
            event.state,
            self._keys,
            token_key=self._token,
            recipient_keys=self._public,
            dry_run=True,
        )
        return {(d.recipient or "-", d.protocol.ref if d.protocol else "-"): d for d in decisions}

    def rows(self, index: int, event: SimEvent) -> list[Row]:
        """A row per recipient and protocol deciding ``event``, in either set."""
        new = self._decisions(event, self.candidate)
        old = self._decisions(event, self.live) if self.live is not None else {}
        rows = []
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
                    live=(_label(before) if before else "-") if self.live is not None else None,
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


def simulate(
    events: Iterable[SimEvent], candidate: ProtocolSet, live: ProtocolSet | None = None
) -> list[Row]:
    """A row per event, recipient and protocol, in either set."""
    simulator = Simulator(candidate, live)
    return [row for i, event in enumerate(events, 1) for row in simulator.rows(i, event)]


class _ThrowawayKeys(dict[str, Key]):
    """A fresh random pseudonym key for any recipient asked for: simulated pseudonyms are
    never the real ones."""

    def __missing__(self, agency: str) -> Key:
        key = Key(f"simulation-{agency}", os.urandom(32))
        self[agency] = key
        return key
