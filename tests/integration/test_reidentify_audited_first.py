"""Re-identification is audited before the value is given, or not given at all: with the
audit trail unavailable, 503 and no value; with it back, the value and the record that says
who asked and why."""

from __future__ import annotations

import httpx
from aiokafka.errors import KafkaConnectionError
from fastapi import FastAPI

from consent.core.tokens import tokenise
from consent.registry import reidentify
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.keyring import Keyring
from services.backbone.settings import HttpSettings
from tests.people import IG_OFFICER, PRACTITIONER, People

NHS = "9434765919"
PH = "ph-northshire"
FIELD = "subject.nhs_number"
REASON = "Data quality query DQ-118: duplicate attendance suspected by the PH analyst"


class Trail:
    """The audit path: refuses while ``down`` (Kafka away), else keeps what it is sent."""

    def __init__(self) -> None:
        self.down = True
        self.sent: list[AuditRecord] = []

    async def __call__(self, record: AuditRecord, key: bytes) -> None:
        if self.down:
            raise KafkaConnectionError("the broker is away")
        self.sent.append(record)


async def test_nothing_is_reidentified_unless_its_audit_record_is_written_first(
    keyring: Keyring, people: People
) -> None:
    trail = Trail()
    app = FastAPI()
    verifier = HttpSettings().people()
    reidentify.add_routes(app, keyring=keyring, people=verifier, send_audit=trail)
    token_key = keyring.token_key()
    assert token_key is not None
    token = tokenise(token_key, recipient=PH, path=FIELD, value=NHS)
    body = {"token": token, "recipient": PH, "field": FIELD, "reason": REASON}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://consent"
    ) as api:
        refused = await api.post("/reidentify", json=body, headers=people.bearer(IG_OFFICER))
        assert refused.status_code == 503, refused.text
        assert NHS not in refused.text and trail.sent == []
        # Only an IG officer may ask at all.
        other = await api.post("/reidentify", json=body, headers=people.bearer(PRACTITIONER))
        assert other.status_code == 403
        trail.down = False
        given = await api.post("/reidentify", json=body, headers=people.bearer(IG_OFFICER))
    assert given.status_code == 200, given.text
    assert given.json()["value"] == NHS
    (record,) = trail.sent
    assert (record.decision, record.reason) == (AuditOutcome.RE_IDENTIFIED, REASON)
    assert record.audit_id == given.json()["audit_id"]
    assert NHS not in record.model_dump_json()
