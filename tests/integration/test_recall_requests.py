"""Recalling a submission at an agency service (no Kafka: what the outbox takes). The recall
is stored as a submission of its own, one event per child under the record key its events
went out with; the same recall sent again is answered as before; what cannot be recalled is
refused with nothing stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

from deploy.devstack.demo import scenario
from services.agency.recalls import WINDOW, purge_outbox
from services.backbone.recall import RECALL_REQUESTED
from tests.e2e.scenario_data import IDENTIFYING
from tests.integration.agency_helpers import (
    SERVICES,
    bearer,
    client_of,
    routes_only,
    runtime_of,
    token,
)

PLANS = "/child-protection-plans"
SOCIAL_CARE = SERVICES["socialcare"]


def _outbox(app: Any) -> dict[str, tuple[bytes | None, dict[str, Any]]]:
    """Every record waiting in the outbox: its key and value, by event id."""
    rt = runtime_of(app)
    return {
        p.event_id: (p.key, orjson.loads(p.value)) for p in rt.outbox.pending(rt.source_topic, 100)
    }


async def test_a_recall_is_published_under_the_recalled_records_key(
    keyring_path: Path, database_url: str
) -> None:
    app = routes_only(SOCIAL_CARE, keyring_path, database_url)
    async with client_of(app) as api:
        auth = bearer(token(keyring_path, SOCIAL_CARE.agency))
        sent = await api.post(PLANS, json=scenario.plan_started(scenario.ON_PLAN), headers=auth)
        assert sent.status_code == 202, sent.text
        submission = sent.json()["submission"]
        (plan,) = sent.json()["events"]

        url = f"/submissions/{submission}/recall"
        got = await api.post(url, json={"reason": "wrong_subject"}, headers=auth)
        assert got.status_code == 202, got.text
        answer = got.json()
        assert answer["recalls"] == submission
        (event,) = answer["events"]
        assert event["type"] == RECALL_REQUESTED
        assert got.headers["Location"] == f"/submissions/{answer['submission']}"

        # Sent again: the same answer, nothing more stored.
        again = await api.post(url, json={"reason": "wrong_subject"}, headers=auth)
        assert again.status_code == 202 and again.json() == answer
        assert again.headers["Idempotent-Replayed"] == "true"
        # Another reason for the same events: refused.
        other = await api.post(url, json={"reason": "inaccurate"}, headers=auth)
        assert other.status_code == 409, other.text
        # A recall cannot be recalled; an event not in the submission is refused.
        of_recall = await api.post(
            f"/submissions/{answer['submission']}/recall",
            json={"reason": "shared_in_error"},
            headers=auth,
        )
        assert of_recall.status_code == 422, of_recall.text
        unknown = await api.post(
            url, json={"reason": "shared_in_error", "events": ["not-an-event"]}, headers=auth
        )
        assert unknown.status_code == 422, unknown.text
        assert "events" in str(unknown.json())
        missing = await api.post(
            "/submissions/00000000-0000-4000-8000-000000000000/recall",
            json={"reason": "shared_in_error"},
            headers=auth,
        )
        assert missing.status_code == 404
        bad_reason = await api.post(url, json={"reason": "because"}, headers=auth)
        assert bad_reason.status_code == 422

    held = _outbox(app)
    assert set(held) == {plan["id"], event["id"]}
    plan_key, _ = held[plan["id"]]
    recall_key, recall_data = held[event["id"]]
    assert recall_key == plan_key  # the child's routing key: it follows the plan
    assert recall_data == {
        "submission": submission,
        "recalled": [{"id": plan["id"], "type": plan["type"]}],
        "reason": "wrong_subject",
    }
    # Nothing of the child: no identifier, name or date of birth.
    raw = orjson.dumps(recall_data)
    for value in IDENTIFYING:
        assert value.encode() not in raw, value


async def test_a_published_record_keeps_its_key_for_a_recall(
    keyring_path: Path, database_url: str
) -> None:
    app = routes_only(SOCIAL_CARE, keyring_path, database_url)
    rt = runtime_of(app)
    async with client_of(app) as api:
        auth = bearer(token(keyring_path, SOCIAL_CARE.agency))
        sent = await api.post(PLANS, json=scenario.plan_started(scenario.ON_PLAN), headers=auth)
        submission = sent.json()["submission"]
        (pending,) = rt.outbox.pending(rt.source_topic, 10)
        rt.outbox.mark_published([pending.seq], now=datetime.now(UTC))
        got = await api.post(
            f"/submissions/{submission}/recall", json={"reason": "shared_in_error"}, headers=auth
        )
        assert got.status_code == 202, got.text
        (recalled,) = rt.outbox.pending(rt.source_topic, 10)
        assert recalled.key == pending.key


async def test_what_cannot_be_recalled_is_refused_with_nothing_stored(
    keyring_path: Path, database_url: str
) -> None:
    app = routes_only(SOCIAL_CARE, keyring_path, database_url)
    rt = runtime_of(app)
    async with client_of(app) as api:
        auth = bearer(token(keyring_path, SOCIAL_CARE.agency))
        old = await api.post(PLANS, json=scenario.plan_started(scenario.ON_PLAN), headers=auth)
        keyless = await api.post(
            PLANS,
            json=scenario.plan_started(scenario.ON_PLAN, plan_id="CPP-2026-0999"),
            headers=auth,
        )
        seqs = [p.seq for p in rt.outbox.pending(rt.source_topic, 10)]
        rt.outbox.mark_published(seqs, now=datetime.now(UTC))
        long_ago = datetime.now(UTC) - WINDOW - timedelta(days=1)
        old_id = old.json()["events"][0]["id"]
        keyless_id = keyless.json()["events"][0]["id"]
        with rt.outbox.engine.begin() as conn:
            conn.execute(
                text("UPDATE outbox_event SET published_at = :t WHERE event_id = :e"),
                {"t": long_ago, "e": old_id},
            )
            # As records published before keys were kept are.
            conn.execute(
                text("UPDATE outbox_event SET record_key = NULL WHERE event_id = :e"),
                {"e": keyless_id},
            )
        for sent, says in ((old, "recall window"), (keyless, "before infoshare kept")):
            got = await api.post(
                f"/submissions/{sent.json()['submission']}/recall",
                json={"reason": "shared_in_error"},
                headers=auth,
            )
            assert got.status_code == 409, got.text
            assert says in got.json()["detail"]
    assert rt.outbox.pending(rt.source_topic, 10) == []


async def test_the_outbox_forgets_what_no_recall_can_reach_any_more(
    keyring_path: Path, database_url: str
) -> None:
    """Published longer ago than the recall window: its record and (with nothing left in it)
    its submission are deleted; what is younger, or waiting, stays; so do versions."""
    app = routes_only(SOCIAL_CARE, keyring_path, database_url)
    rt = runtime_of(app)
    async with client_of(app) as api:
        auth = bearer(token(keyring_path, SOCIAL_CARE.agency))
        sent = [
            await api.post(
                PLANS,
                json=scenario.plan_started(scenario.ON_PLAN, plan_id=f"CPP-2026-070{n}"),
                headers=auth,
            )
            for n in range(3)
        ]
        old, recent, waiting = (s.json() for s in sent)
        published = [p for p in rt.outbox.pending(rt.source_topic, 10)][:2]
        now = datetime.now(UTC)
        rt.outbox.mark_published([p.seq for p in published], now=now)
        with rt.outbox.engine.begin() as conn:
            conn.execute(
                text("UPDATE outbox_event SET published_at = :t WHERE event_id = :e"),
                {"t": now - WINDOW - timedelta(days=1), "e": old["events"][0]["id"]},
            )
            conn.execute(
                text("UPDATE outbox_submission SET received_at = :t WHERE id = :s"),
                {"t": now - WINDOW - timedelta(days=1), "s": old["submission"]},
            )
        assert purge_outbox(rt.intake, now) == 1
        assert (await api.get(f"/submissions/{old['submission']}", headers=auth)).status_code == 404
        for kept in (recent, waiting):
            got = await api.get(f"/submissions/{kept['submission']}", headers=auth)
            assert got.status_code == 200, got.text
        assert [p.event_id for p in rt.outbox.pending(rt.source_topic, 10)] == [
            waiting["events"][0]["id"]
        ]
        assert purge_outbox(rt.intake, now) == 0
    first = old["events"][0]["id"]
    assert rt.outbox.versions(SOCIAL_CARE.agency, [first])[first].version == 1
