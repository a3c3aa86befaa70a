"""The audit path a store's purges are sent on, recorded for tests: fails while ``down`` (as
Kafka away), counting every call and every refusal."""

from __future__ import annotations

from services.backbone.audit_contract import AuditRecord


class Sent:
    def __init__(self, *, down: bool = False) -> None:
        self.records: list[AuditRecord] = []
        self.down = down
        self.calls = 0
        self.refused = 0

    async def __call__(self, record: AuditRecord) -> None:
        self.calls += 1
        if self.down:
            self.refused += 1
            raise ConnectionError("the broker is away")
        self.records.append(record)
