"""Amended records at an agency service (no Kafka: what the outbox takes): a record sent
again unchanged is the same event; changed under the same native id it is a new version,
a new event that names the one it supersedes; two amendments of one record at once cannot
both win."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from deploy.devstack.demo import scenario
from services.agency.publish import OVERRIDE_HEADER, OVERRIDE_ROLE_HEADER
from services.backbone import envelope
from services.outbox.store import AmendedMeanwhile, NewSubmission, Version, VersionChange
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


def _extension(app: Any, event_id: str, name: str) -> str | None:
    rt = runtime_of(app)
    for pending in rt.outbox.pending(rt.source_topic, 100):
        if pending.event_id == event_id:
            found = dict(pending.headers).get(f"ce_{name}")
            return found.decode() if found is not None else None
    raise AssertionError("not in the outbox")


async def test_an_amended_plan_is_a_new_version_and_an_identical_one_is_not(
    keyring_path: Path, database_url: str
) -> None:
    app = routes_only(SOCIAL_CARE, keyring_path, database_url)
    plan = scenario.plan_started(scenario.ON_PLAN, plan_id="CPP-2026-0420")
    amended = copy.deepcopy(plan)
    amended["plan"]["category"] = "emotional_abuse"
    async with client_of(app) as api:
        auth = bearer(token(keyring_path, SOCIAL_CARE.agency))

        async def send(body: dict[str, Any]) -> dict[str, Any]:
            got = await api.post(PLANS, json=body, headers=auth)
            assert got.status_code == 202, got.text
            (event,) = got.json()["events"]
            return dict(event)

        first = await send(plan)
        assert (first.get("version"), first.get("supersedes")) == (None, None)
        assert await send(plan) == first  # unchanged: the same event, dropped downstream
        second = await send(amended)
        assert second["id"] != first["id"]
        assert (second["version"], second["supersedes"]) == (2, first["id"])
        assert await send(amended) == second
        back = await send(plan)  # changed back: a third version, superseding the second
        assert (back["version"], back["supersedes"]) == (3, second["id"])
    assert _extension(app, second["id"], envelope.EXT_SUPERSEDES) == first["id"]
    assert _extension(app, first["id"], envelope.EXT_SUPERSEDES) is None
    # The agency's own id never appears: a version is keyed by the first event's id.
    rt = runtime_of(app)
    first_id = first["id"]
    assert rt.outbox.versions(SOCIAL_CARE.agency, [first_id])[first_id].version == 3


async def test_two_amendments_of_one_record_at_once_cannot_both_win(
    keyring_path: Path, database_url: str
) -> None:
    app = routes_only(SOCIAL_CARE, keyring_path, database_url)
    outbox = runtime_of(app).outbox
    now = datetime.now(UTC)

    def amending(previous: int | None, version: int) -> NewSubmission:
        change = VersionChange("first", previous, Version(version, f"d{version}", f"e{version}"))
        return NewSubmission(SOCIAL_CARE.agency, "k", None, f"f{version}", [], {}, [change])

    (one,) = outbox.accept_all([amending(None, 1)], now=now)
    assert not isinstance(one, Exception)
    # Both read version 1 and both write version 2: in one group commit and apart.
    won, lost = outbox.accept_all([amending(1, 2), amending(1, 2)], now=now)
    assert not isinstance(won, Exception) and isinstance(lost, AmendedMeanwhile)
    (late,) = outbox.accept_all([amending(None, 1)], now=now)  # a first version again
    assert isinstance(late, AmendedMeanwhile)
    assert outbox.versions(SOCIAL_CARE.agency, ["first"])["first"] == Version(2, "d2", "e2")


async def test_first_versions_go_in_together_and_one_taken_meanwhile_refuses_them_all(
    keyring_path: Path, database_url: str
) -> None:
    app = routes_only(SOCIAL_CARE, keyring_path, database_url)
    outbox = runtime_of(app).outbox
    now = datetime.now(UTC)

    def change(first: str, previous: int | None, version: int) -> VersionChange:
        return VersionChange(first, previous, Version(version, f"d{version}", f"{first}{version}"))

    def submission(fingerprint: str, *changes: VersionChange) -> NewSubmission:
        return NewSubmission(SOCIAL_CARE.agency, "k", None, fingerprint, [], {}, list(changes))

    (taken,) = outbox.accept_all([submission("b", change("b", None, 1))], now=now)
    assert not isinstance(taken, Exception)
    firsts = [change(name, None, 1) for name in ("a", "b", "c")]  # "b" was taken meanwhile
    (refused,) = outbox.accept_all([submission("abc", *firsts)], now=now)
    assert isinstance(refused, AmendedMeanwhile) and refused.args == ("b",)
    assert set(outbox.versions(SOCIAL_CARE.agency, ["a", "b", "c"])) == {"b"}  # none half-in
    # A record's first version and its amendment in one submission: in their order.
    (both,) = outbox.accept_all([submission("d", change("d", None, 1), change("d", 1, 2))], now=now)
    assert not isinstance(both, Exception)
    assert outbox.versions(SOCIAL_CARE.agency, ["d"])["d"] == Version(2, "d2", "d2")


async def test_a_record_from_before_versions_were_kept_is_amended_not_lost(
    keyring_path: Path, database_url: str
) -> None:
    app = routes_only(SOCIAL_CARE, keyring_path, database_url)
    plan = scenario.plan_started(scenario.ON_PLAN, plan_id="CPP-2026-0421")
    amended = copy.deepcopy(plan)
    amended["plan"]["category"] = "physical_abuse"
    async with client_of(app) as api:
        auth = bearer(token(keyring_path, SOCIAL_CARE.agency))
        (first,) = (await api.post(PLANS, json=plan, headers=auth)).json()["events"]
        with runtime_of(app).outbox.engine.begin() as conn:  # as a store made before
            conn.execute(text("DELETE FROM outbox_native_version"))
        answered = await api.post(PLANS, json=amended, headers=auth)
        assert answered.status_code == 202, answered.text
        (second,) = answered.json()["events"]
    assert (second["version"], second["supersedes"]) == (2, first["id"])


async def test_an_override_said_in_headers_is_not_a_change_of_the_record(
    keyring_path: Path, database_url: str
) -> None:
    app = routes_only(SOCIAL_CARE, keyring_path, database_url)
    plan = scenario.plan_started(scenario.ON_PLAN, plan_id="CPP-2026-0422")
    override = {
        OVERRIDE_HEADER: "asking would put the child at risk",
        OVERRIDE_ROLE_HEADER: "ED consultant",
    }
    async with client_of(app) as api:
        auth = bearer(token(keyring_path, SOCIAL_CARE.agency))
        (first,) = (await api.post(PLANS, json=plan, headers=auth)).json()["events"]
        again = await api.post(PLANS, json=plan, headers={**auth, **override})
        assert again.status_code == 202, again.text
    assert again.json()["events"] == [first]
