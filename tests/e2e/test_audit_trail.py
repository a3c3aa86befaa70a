"""An IG officer, as the README says: find every disclosure about a child from the demo,
export it, tamper with the database by hand, and see `infoshare audit verify` say where.
This module's stack keeps its audit trail in PostgreSQL (`infoshare up --postgres`), so the
production store is driven end to end; the other modules' stacks use SQLite."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy
from fhir.resources.R4B.bundle import Bundle
from pypdf import PdfReader
from typer.testing import CliRunner

from deploy.cli.main import app
from deploy.devstack.demo import scenario
from deploy.devstack.demo.play import Outcome
from deploy.devstack.stack import Stack
from services.backbone.kafka_access import KafkaAccess
from services.ops.components import BY_NAME
from tests.e2e.stacks import running_stack
from tests.people import IG, OFFICER, stack_token
from tests.people import PERSON_PRACTITIONER as PRACTITIONER

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


@pytest.fixture(scope="module")
def stack(kafka_access: KafkaAccess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(kafka_access, tmp_path_factory, postgres=True) as running:
        assert running.audit_database_url.startswith("postgresql+psycopg://")
        yield running


def _report(stack: Stack, fmt: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(
        stack.url("audit") + f"/audit/disclosure-report?format={fmt}",
        json={"nhs_number": scenario.ON_PLAN.nhs_number},
        headers=headers,
        timeout=10,
    )


def test_an_ig_officer_finds_exports_and_proves_a_childs_disclosures(
    stack: Stack, outcome: Outcome
) -> None:
    officer = _token(stack, IG)
    assert _report(stack, "json", None).status_code == 401
    practitioner = _token(stack, PRACTITIONER)
    assert _report(stack, "json", practitioner).status_code == 403  # not an IG officer

    report = _report(stack, "json", officer).json()
    got = sorted(
        (r["recipient"] or "-", r["decision"], r["protocol_id"] or "-") for r in report["items"]
    )
    assert got == sorted(
        [
            # The plan and its correction, each told back to the authority; the correction
            # sent again, suppressed.
            *[("nhs-riverside-ed", "shared", "cpis-protection-plan-flag")] * 2,
            *[("la-northshire", "shared", "-")] * 2,
            ("-", "suppressed", "-"),
            ("la-northshire", "shared", "cpis-attendance-notification"),
            ("la-northshire", "withheld", "early-help-attendance"),
            ("ph-northshire", "shared", "public-health-attendance-analytics"),
            # The school's attendance concern: the same child, named by UPN and NHS number.
            ("la-northshire", "shared", "school-notifications-to-local-authority"),
            # The attendance sent under this child's record in error, and recalled: the
            # recall to each recipient, and each store's deletion of its copy.
            ("la-northshire", "shared", "cpis-attendance-notification"),
            ("la-northshire", "withheld", "early-help-attendance"),
            ("ph-northshire", "shared", "public-health-attendance-analytics"),
            ("la-northshire", "recalled", "cpis-attendance-notification"),
            ("ph-northshire", "recalled", "public-health-attendance-analytics"),
            *[("la-northshire", "recorded", "cpis-attendance-notification")] * 2,
            ("ph-northshire", "recorded", "public-health-attendance-analytics"),
        ]
    )
    assert scenario.ON_PLAN.nhs_number not in str(report)

    table = list(csv.DictReader(io.StringIO(_report(stack, "csv", officer).text)))
    assert len(table) == 17 and table[0]["recorded_at"].endswith("Z")
    bundle = _report(stack, "fhir", officer)
    assert bundle.headers["content-type"].startswith("application/fhir+json")
    parsed = Bundle.model_validate(bundle.json())
    assert len(parsed.entry or []) == 17
    pdf = _report(stack, "pdf", officer)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    printed = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert report["items"][0]["recipient"] in printed
    assert scenario.ON_PLAN.nhs_number not in printed

    # The authority's own person id finds the same decisions (the trail keeps it keyed).
    by_la_id = httpx.post(
        stack.url("audit") + "/audit/decisions/search",
        json={
            "child": {
                "la_person_id": scenario.ON_PLAN.person_id,
                "local_authority": "la-northshire",
            }
        },
        headers={"Authorization": f"Bearer {officer}"},
        timeout=10,
    ).json()
    # (The stores' deletions a recall caused name the notice, not the child: the report
    # joins them to the recall, a search by child does not.)
    assert sorted(i["audit_id"] for i in by_la_id["items"]) == sorted(
        i["audit_id"] for i in report["items"] if i["action"] != "recall_purge"
    )

    # Each look-up is itself in the trail: who looked, at which child (by key), when.
    seen = httpx.get(
        stack.url("audit") + "/audit/decisions?decision=accessed&limit=1000",
        headers={"Authorization": f"Bearer {officer}"},
        timeout=10,
    ).json()
    looks = [r for r in seen["items"] if r["subject_key"] == report["subject_key"]]
    assert len(looks) >= 5 and all(r["actor"] == f"ig-officer:{OFFICER}" for r in looks)


def test_audit_verify_proves_the_trail_then_names_the_record_edited_by_hand(
    stack: Stack, outcome: Outcome
) -> None:
    """As an operator with the keyring, and as an outside verifier with only the public
    keys and the anchor topic on the stack's broker."""
    state = stack.config.state_dir
    env = {
        "INFOSHARE_KEYRING_FILE": str(stack.keyring),
        "INFOSHARE_AUDIT_DATABASE_URL": stack.audit_database_url,
        "INFOSHARE_AUDIT_CHECKPOINT_FILE": str(state / "audit-checkpoints.jsonl"),
        "INFOSHARE_TOPIC_NAMESPACE": stack.config.namespace,
        **stack.kafka.as_env(),
    }
    runner = CliRunner()
    intact = runner.invoke(app, ["audit", "verify"], env=env)
    assert intact.exit_code == 0, intact.output
    assert "chain links checked" in intact.output
    keys = state / "audit-public-keys.json"
    assert runner.invoke(app, ["audit", "public-keys", "--out", str(keys)], env=env).exit_code == 0
    outside = {**env, "INFOSHARE_KEYRING_FILE": str(state / "no-keyring.yaml")}
    public = runner.invoke(
        app, ["audit", "verify", "--public-keys", str(keys), "--no-file"], env=outside
    )
    assert public.exit_code == 0, public.output
    assert "chain links not checked" in " ".join(public.output.split())
    engine = sqlalchemy.create_engine(stack.audit_owner_url)
    with engine.begin() as db:  # by hand, as the database's owner could
        db.execute(sqlalchemy.text("UPDATE audit_entry SET decision = 'withheld' WHERE seq = 2"))
    engine.dispose()
    tampered = runner.invoke(app, ["audit", "verify"], env=env)
    assert tampered.exit_code == 1
    assert "TAMPERED: record 2: edited" in tampered.output


def test_the_audit_services_database_role_reads_and_adds_but_never_changes_or_deletes(
    stack: Stack, outcome: Outcome
) -> None:
    engine = sqlalchemy.create_engine(stack.audit_database_url)  # the service's own role
    try:
        with engine.connect() as db:
            assert db.execute(sqlalchemy.text("SELECT count(*) FROM audit_entry")).scalar()
        for statement in (
            "UPDATE audit_entry SET decision = 'withheld' WHERE seq = 1",
            "DELETE FROM audit_entry WHERE seq = 1",
            "DELETE FROM audit_checkpoint",
            "UPDATE override_review SET note = 'x'",
            "DROP TABLE audit_entry",
            "CREATE TABLE elsewhere (x int)",
        ):
            with pytest.raises(sqlalchemy.exc.ProgrammingError) as refused, engine.begin() as db:
                db.execute(sqlalchemy.text(statement))
            said = str(refused.value.orig)
            assert "permission denied" in said or "must be owner" in said, statement
    finally:
        engine.dispose()
    # And no other component is given the audit store at all.
    for name in ("socialcare", "consent", "delivery", "processor"):
        assert "INFOSHARE_AUDIT_DATABASE_URL" not in stack._env(BY_NAME[name]), name


def _token(stack: Stack, credentials: str) -> str:
    return stack_token(stack.config.state_dir, credentials)


def _refused(url: str, statement: str) -> str:
    """What PostgreSQL says when ``url``'s role runs ``statement`` (it must refuse)."""
    engine = sqlalchemy.create_engine(url)
    try:
        with pytest.raises(sqlalchemy.exc.SQLAlchemyError) as refused, engine.begin() as db:
            db.execute(sqlalchemy.text(statement))
    finally:
        engine.dispose()
    orig = getattr(refused.value, "orig", refused.value)
    return str(orig)


def _as_role(url: str, database: str) -> str:
    """``url`` (a role's) pointed at another database."""
    return url.rsplit("/", 1)[0] + "/" + database


def test_each_component_has_a_database_role_of_its_own_with_only_its_rights(
    stack: Stack, outcome: Outcome
) -> None:
    """The scenario ran through every store on PostgreSQL (so each role's rights suffice);
    an agency service's role cannot reach the audit or delivery store, the consent API's can
    only read the person index, and delivery cannot change a delivery once stored."""
    from deploy.devstack.postgres import databases as dbs

    env = {name: stack._env(BY_NAME[name]) for name in ("socialcare", "consent", "delivery")}
    agency = env["socialcare"]
    assert set(agency) & set(dbs.DATABASE_SETTINGS) == {dbs.OUTBOX_URL, dbs.PERSON_INDEX_URL}
    assert set(env["consent"]) & set(dbs.DATABASE_SETTINGS) == {dbs.PERSON_INDEX_URL}
    assert set(env["delivery"]) & set(dbs.DATABASE_SETTINGS) == {dbs.DELIVERY_URL}
    assert not set(stack._env(BY_NAME["processor"])) & set(dbs.DATABASE_SETTINGS)

    outbox = agency[dbs.OUTBOX_URL]
    assert "infoshare_agency_la_northshire" in outbox
    engine = sqlalchemy.create_engine(outbox)
    try:
        with engine.connect() as db:  # it did its work: the scenario's events are there
            assert db.execute(sqlalchemy.text("SELECT count(*) FROM outbox_event")).scalar()
    finally:
        engine.dispose()
    for other in (dbs.AUDIT_DB, dbs.DELIVERY_DB):
        said = _refused(_as_role(outbox, other), "SELECT 1")
        assert "permission denied for database" in said, other
    # It deletes published records once no recall can reach them, never a record's versions
    # (an amendment needs the last one), and never changes the schema.
    for statement in ("DELETE FROM outbox_native_version", "DROP TABLE outbox_event"):
        said = _refused(outbox, statement)
        assert "permission denied" in said or "must be owner" in said, statement

    said = _refused(
        env["consent"][dbs.PERSON_INDEX_URL],
        "UPDATE person_index_person SET id = id",
    )
    assert "permission denied" in said
    delivery = env["delivery"][dbs.DELIVERY_URL]
    # A delivery is never changed; it is deleted only by the retention purge (DELETE granted).
    never = ("UPDATE delivery_event SET event_id = event_id", "DROP TABLE delivery_event")
    for statement in never:
        said = _refused(delivery, statement)
        assert "permission denied" in said or "must be owner" in said, statement
    # Each service's retention purge ran at start as its own role, and logged its run.
    logs = (
        (delivery, "SELECT count(*) FROM delivery_retention_purge"),
        (outbox, "SELECT count(*) FROM agency_inbox_purge"),
    )
    for url, count in logs:
        engine = sqlalchemy.create_engine(url)
        try:
            with engine.connect() as db:
                assert db.execute(sqlalchemy.text(count)).scalar(), count
        finally:
            engine.dispose()
