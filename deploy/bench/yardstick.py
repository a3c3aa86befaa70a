"""The plain-Python yardstick (``../shared/yardsticks/decide.py``) beside the same work done
by infoshare, so that ``infoshare bench policy`` can give their ratio from one run.

The yardstick decodes a ~1 KB case event, and for five recipients projects an allow-list,
generalises two fields, HMACs a pseudonym and serialises a delivery and an audit record.
Ours does the same through the product's own code: ``envelope.decode`` of the same event as
a Kafka record, ``decide`` with a protocol of those rules, and the processor's
``delivery_record`` and ``audit_record`` (the full audit contract, subject keys included).
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from consent.core.decide import EventFacts, decide
from consent.core.model import (
    FieldRule,
    Generalisation,
    IdentityLevel,
    LawfulBasis,
    Protocol,
    ProtocolSet,
    Purpose,
    RecipientRule,
    RuleKind,
)
from consent.core.sealed import DataKeys
from consent.core.state import SubjectState
from consent.processor.records import AuditSubject, audit_record, delivery_record
from services.backbone import envelope
from services.backbone.identifiers import subject_identifier
from services.backbone.keyed import Key
from services.backbone.records import ReadRecord

RECIPIENTS = [f"yardstick-{i}" for i in range(5)]
ALLOWED = ("arrival_time", "setting_type", "site", "presenting_complaint_category")


def default_path() -> Path:
    """Where the team keeps it: beside the repository, in ``shared/yardsticks``."""
    return Path(__file__).resolve().parents[3] / "shared" / "yardsticks" / "decide.py"


def load(path: Path) -> ModuleType | None:
    """The yardstick module, or None if it is not there (a clean clone has no ``shared``)."""
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("infoshare_bench_yardstick", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _protocol(event_type: str, source: str) -> Protocol:
    rules = (
        *(FieldRule(RuleKind.ALLOW, f"attendance.{f}", f"attendance.{f}") for f in ALLOWED),
        FieldRule(RuleKind.PSEUDONYMISE, "subject.nhs_number", "subject.pseudonym"),
        FieldRule(
            RuleKind.GENERALISE, "subject.date_of_birth", "subject.year", Generalisation.YEAR
        ),
        FieldRule(
            RuleKind.GENERALISE,
            "subject.postcode",
            "subject.district",
            Generalisation.POSTCODE_DISTRICT,
        ),
    )
    return Protocol(
        id="yardstick",
        version=1,
        title="the yardstick's rules",
        owner="bench",
        purpose=Purpose.DIRECT_SAFEGUARDING,
        lawful_basis=LawfulBasis("e", "g", "part 2 para 18"),
        source_agencies=frozenset({source}),
        event_types=frozenset({event_type}),
        recipients=tuple(
            RecipientRule(agency, IdentityLevel.PSEUDONYMISED, rules) for agency in RECIPIENTS
        ),
    )


def ours(raw_event: str) -> tuple[Callable[[], list[bytes]], Callable[[], object]]:
    """One decision as the yardstick counts it, done by infoshare's own code; and
    ``decide()`` alone over the same event and rules, its input already decoded."""
    doc: dict[str, Any] = json.loads(raw_event)
    source = str(doc["source"])
    event = envelope.CloudEvent(
        type=str(doc["type"]), source=source, data=doc["data"], key="k" * 32, id=str(doc["id"])
    )
    key, value, headers = envelope.encode(event)
    rec = ReadRecord("bench.source", 0, 0, key, value, list(headers))
    protocols = ProtocolSet((_protocol(event.type, event.source_agency),))
    keys = {agency: Key(f"k-{agency}", os.urandom(32)) for agency in RECIPIENTS}
    audit_key, id_key = Key("audit", os.urandom(32)), os.urandom(32)
    data_keys = DataKeys({})

    def decide_one() -> list[bytes]:
        decoded = envelope.decode(rec.key, rec.value, rec.headers)
        subject_id = subject_identifier(nhs_number=decoded.data["subject"]["nhs_number"])
        facts = EventFacts(
            decoded.id,
            decoded.type,
            decoded.source_agency,
            decoded.data,
            subject_id,
            occurred=decoded.time.date(),
        )
        subject = AuditSubject.of(audit_key, subject_id)
        now = datetime.now(UTC)
        out: list[bytes] = []
        for d in decide(facts, protocols, SubjectState(), keys, recipient_keys=data_keys):
            topic = f"deliver.{d.recipient}"
            delivered = delivery_record(decoded, d, topic, [])
            out.append(delivered.value or b"")
            out.append(
                audit_record(
                    d, decoded, rec, now=now, subject=subject, topic_out=topic,
                    trace_id=None, id_key=id_key,
                )
            )  # fmt: skip
        return out

    produced = decide_one()
    assert len(produced) == 2 * len(RECIPIENTS)
    decoded = envelope.decode(rec.key, rec.value, rec.headers)
    facts = EventFacts(
        decoded.id,
        decoded.type,
        decoded.source_agency,
        decoded.data,
        subject_identifier(nhs_number=decoded.data["subject"]["nhs_number"]),
        occurred=decoded.time.date(),
    )
    state = SubjectState()

    def decide_alone() -> object:
        return decide(facts, protocols, state, keys, recipient_keys=data_keys)

    return decide_one, decide_alone
