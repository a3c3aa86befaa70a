"""How ``infoshare status`` judges what it heard: a component's health answer (or its silence)
as up, degraded or down with the reason, and the facts the services report about webhook
circuits, the audit checkpoint and the delivery reader's offsets. Pure: probes in, data out.

A body is another process's word: every field is checked for its type before it is used.
"""

from __future__ import annotations

from typing import Any

from services.ops.status_model import AuditCheckpointStatus, Circuit, ComponentStatus, Probe, State

OUTBOX_STALL_S = 5.0  # events waiting this long, unacknowledged (the relay's stall_s)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _silence(probe: Probe) -> str:
    return f"not answering ({probe.error})" if probe.error else f"answered HTTP {probe.code}"


def _agency_facts(outbox: dict[str, Any]) -> tuple[str | None, list[str]]:
    pending, dead = _int(outbox.get("pending")) or 0, _int(outbox.get("dead_lettered")) or 0
    age = _num(outbox.get("oldest_pending_s")) or 0.0
    facts = [f"outbox {pending} pending" + (f", oldest {age:.0f}s" if pending else "")]
    if dead:
        facts.append(f"outbox {dead} dead-lettered")
    # The relay says connected once Kafka acknowledged a record: an idle outbox that has not
    # published since it started is not cut off, one whose events wait is.
    cut_off = outbox.get("kafka_connected") is False and pending and age >= OUTBOX_STALL_S
    return ("its outbox cannot reach Kafka" if cut_off else None), facts


def judge_http(name: str, probe: Probe) -> ComponentStatus:
    """An HTTP component from its ``GET /healthz``: down when it does not answer 200;
    degraded when the answer is not a JSON object or reports a problem; up otherwise."""
    body = probe.body
    if probe.code != 200:
        return ComponentStatus(name, probe.url, State.DOWN, _silence(probe))
    if body is None:
        return ComponentStatus(name, probe.url, State.DEGRADED, "its answer is not a JSON object")
    problems: list[str] = []
    facts: list[str] = []
    status = body.get("status")
    if status != "ok":
        why = body.get("reason") or body.get("problem")
        problems.append(f"reports status {status!r}" + (f": {why}" if isinstance(why, str) else ""))
    if isinstance(body.get("outbox"), dict):
        problem, more = _agency_facts(body["outbox"])
        problems += [problem] if problem else []
        facts += more
    if alerts := _int(body.get("alerts")):
        facts.append(f"{alerts} notification(s) given up on")
    if opened := _int(body.get("open_breakers")):
        facts.append(f"{opened} webhook circuit(s) not closed")
    if (records := _int(body.get("records"))) is not None:
        facts.append(f"{records} audit records")
    state = State.DEGRADED if problems else State.UP
    return ComponentStatus(name, probe.url, state, "; ".join(problems), tuple(facts))


def judge_processor(probe: Probe, *, group: str, members: int | None) -> ComponentStatus:
    """The processor has no health API: its ``GET /metrics`` and its consumer group speak for
    it. A member left by a killed process lingers until the broker's session timeout, so
    membership alone never makes it up."""
    answers = probe.code == 200
    if members is None:
        facts: tuple[str, ...] = (f"group {group}: unknown (Kafka did not answer)",)
    else:
        facts = (f"group {group}: {members} member(s)",)
    if answers and members != 0:
        return ComponentStatus("processor", probe.url, State.UP, facts=facts)
    if answers:
        return ComponentStatus(
            "processor", probe.url, State.DEGRADED, "no member in its consumer group", facts
        )
    if members:
        why = f"its group has a member, but /metrics is {_silence(probe)}"
        return ComponentStatus("processor", probe.url, State.DEGRADED, why, facts)
    return ComponentStatus("processor", probe.url, State.DOWN, _silence(probe), facts)


def circuits_from(probe: Probe) -> tuple[Circuit, ...] | None:
    """The delivery service's webhook circuits (recipient and state only), or None if it did
    not say."""
    raw = probe.body.get("circuits") if probe.code == 200 and probe.body else None
    if not isinstance(raw, list):
        return None
    return tuple(
        Circuit(
            recipient=str(c.get("recipient", "?")),
            state=str(c.get("state", "?")),
            failures=_int(c.get("failures")) or 0,
            retry_in_s=_num(c.get("retry_in_s")),
        )
        for c in raw
        if isinstance(c, dict)
    )


def audit_from(probe: Probe) -> AuditCheckpointStatus | None:
    """The audit store's size and newest checkpoint, or None if the service did not say."""
    body = probe.body if probe.code == 200 else None
    if body is None or (records := _int(body.get("records"))) is None:
        return None
    cp = body.get("last_checkpoint")
    if not isinstance(cp, dict):
        return AuditCheckpointStatus(records)
    made = cp.get("created_at")
    return AuditCheckpointStatus(
        records,
        tree_size=_int(cp.get("tree_size")),
        created_at=made if isinstance(made, str) else None,
        age_s=_num(cp.get("age_s")),
    )


def reader_offsets(probe: Probe) -> dict[tuple[str, int], int] | None:
    """Where the delivery service reads each ``deliver.*`` partition next, or None if it did
    not say."""
    raw = probe.body.get("reader_offsets") if probe.code == 200 and probe.body else None
    if not isinstance(raw, list):
        return None
    found: dict[tuple[str, int], int] = {}
    for row in raw:
        if not isinstance(row, dict) or not isinstance(row.get("topic"), str):
            continue
        partition, offset = _int(row.get("partition")), _int(row.get("next_offset"))
        if partition is not None and offset is not None:
            found[(row["topic"], partition)] = offset
    return found
