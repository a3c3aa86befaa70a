"""The agency services' shared contract, without Kafka, on SQLite and PostgreSQL: an agency
acts only as itself (OWASP API1 object-level and API5 function-level authorisation), a
retried request never publishes twice (Idempotency-Key), a rejected request stores nothing,
and every secured operation documents its answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from consent.core.sealed import DataKeys, seal
from services.backbone.api_keys import PUBLISH, READ_INBOX, new_api_key
from services.backbone.envelope import CloudEvent
from services.backbone.keyring import dump_keyring, read_keyring_doc, write_private
from services.backbone.recipient_keys import new_recipient_key, parse_public
from tests.integration.agency_helpers import (
    SAMPLES,
    SERVICES,
    Service,
    bearer,
    client_of,
    pending,
    runtime_of,
    settings_for,
    token,
)
from tests.people import IG_OFFICER, People

pytestmark = pytest.mark.parametrize("service", list(SERVICES.values()), ids=list(SERVICES))


@pytest.fixture(scope="module")
def scoped_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A keyring of this module's own, with a publish-only and an inbox-only key per agency."""
    from services.backbone.directory import load_directory
    from services.backbone.keyring import generate_keyring

    path = generate_keyring(
        tmp_path_factory.mktemp("scoped") / "keyring.yaml", [a.id for a in load_directory(None)]
    )
    doc = read_keyring_doc(path)
    keys = {}
    for service in SERVICES.values():
        for scope in (PUBLISH, READ_INBOX):
            _id, secret = new_api_key(doc, agency=service.agency, scopes=[scope])
            keys[f"{service.agency}/{scope}"] = secret
    write_private(path, dump_keyring(doc))
    return path, keys


def _secured_operations(service: Service, openapi: dict[str, object]) -> list[tuple[str, str]]:
    ops = []
    for path, methods in openapi["paths"].items():  # type: ignore[attr-defined]
        for method, op in methods.items():
            if "operations" not in op.get("tags", []):
                ops.append((method, path.replace("{submission_id}", "x")))
    assert ops, service.name
    return ops


async def test_every_operation_refuses_whoever_is_not_this_agency_with_the_scope(
    service: Service,
    scoped_keys: tuple[Path, dict[str, str]],
    database_url: str,
    people: People,
) -> None:
    keyring_path, keys = scoped_keys
    app = service.factory(
        settings_for(service, keyring_path=keyring_path, database_url=database_url)
    )
    other = next(s for s in SERVICES.values() if s.agency != service.agency)
    ig_officer = people.token(IG_OFFICER)  # a person, not an agency's system
    async with client_of(app) as api:
        operations = _secured_operations(service, (await api.get("/openapi.json")).json())
        for method, path in operations:
            body = service.sample.body if method == "post" else None

            async def call(
                headers: dict[str, str],
                method: str = method,
                path: str = path,
                body: bytes | None = body,
            ) -> httpx.Response:
                return await api.request(
                    method,
                    path,
                    content=body,
                    headers={"content-type": service.sample.content_type, **headers},
                )

            assert (await call({})).status_code == 401, (method, path)
            assert (await call(bearer("not-a-key"))).status_code == 401, (method, path)
            assert (await call(bearer(ig_officer))).status_code == 401, (method, path)
            # Another agency's key: this service holds only its own agency's key hashes
            # (keys by role), so it is no key at all here.
            foreign = await call(bearer(token(keyring_path, other.agency)))
            assert foreign.status_code == 401, (method, path)
            wrong_scope = READ_INBOX if path != "/inbox" else PUBLISH
            narrow = await call(bearer(keys[f"{service.agency}/{wrong_scope}"]))
            assert narrow.status_code == 403, (method, path)
            assert "scope" in narrow.json()["detail"]
    assert pending(app) == 0  # nothing refused was stored


async def test_the_right_scope_is_enough(
    service: Service, scoped_keys: tuple[Path, dict[str, str]], database_url: str
) -> None:
    keyring_path, keys = scoped_keys
    app = service.factory(
        settings_for(service, keyring_path=keyring_path, database_url=database_url)
    )
    async with client_of(app) as api:
        sent = await service.sample.post(api, **bearer(keys[f"{service.agency}/{PUBLISH}"]))
        assert sent.status_code == 202, sent.text
        inbox = await api.get("/inbox", headers=bearer(keys[f"{service.agency}/{READ_INBOX}"]))
        assert inbox.status_code == 200
        assert inbox.json()["agency"] == service.agency


async def test_an_agency_cannot_see_another_agencys_submission(
    service: Service, keyring_path: Path, database_url: str
) -> None:
    """Two agencies' services on one outbox database: a submission id of one is not found by
    the other, as if it did not exist (no hint that it does)."""
    other = next(s for s in SERVICES.values() if s.agency != service.agency)
    mine = service.factory(
        settings_for(service, keyring_path=keyring_path, database_url=database_url)
    )
    theirs = other.factory(
        settings_for(other, keyring_path=keyring_path, database_url=database_url)
    )
    async with client_of(mine) as api, client_of(theirs) as their_api:
        sent = await service.sample.post(api, **bearer(token(keyring_path, service.agency)))
        assert sent.status_code == 202, sent.text
        location = sent.headers["location"]
        own = await api.get(location, headers=bearer(token(keyring_path, service.agency)))
        assert own.status_code == 200
        assert [e["id"] for e in own.json()["events"]] == [e["id"] for e in sent.json()["events"]]
        assert own.json()["events"][0]["published_at"] is None  # the relay is not running
        got = await their_api.get(location, headers=bearer(token(keyring_path, other.agency)))
        assert got.status_code == 404
        unknown = await their_api.get(
            "/submissions/00000000-0000-0000-0000-000000000000",
            headers=bearer(token(keyring_path, other.agency)),
        )
        assert unknown.json() == got.json()


async def test_a_retried_request_never_publishes_twice(
    service: Service, keyring_path: Path, database_url: str
) -> None:
    app = service.factory(
        settings_for(service, keyring_path=keyring_path, database_url=database_url)
    )
    headers = {**bearer(token(keyring_path, service.agency)), "Idempotency-Key": "req-0001"}
    async with client_of(app) as api:
        first = await service.sample.post(api, **headers)
        assert first.status_code == 202, first.text
        assert "idempotent-replayed" not in first.headers
        # Five retries at once, as a client that timed out might send them.
        retries = await asyncio.gather(*(service.sample.post(api, **headers) for _ in range(5)))
        for again in retries:
            assert again.status_code == 202
            assert again.json() == first.json()
            assert again.headers["idempotent-replayed"] == "true"
            assert again.headers["location"] == first.headers["location"]
        assert pending(app) == len(first.json()["events"])

        # A different request under the same key: here, an override the first did not carry.
        other = await service.sample.post(
            api,
            **headers,
            **{
                "Safeguarding-Override-Justification": "Risk of significant harm if parents told",
                "Safeguarding-Override-Role": "ED consultant",
            },
        )
        assert other.status_code == 422
        assert other.json()["detail"][0]["type"] == "idempotency_key.reused"

        fresh = await service.sample.post(api, **{**headers, "Idempotency-Key": "req-0002"})
        assert fresh.status_code == 202
        assert fresh.json()["submission"] != first.json()["submission"]
        # The same record again: the same event id, for the processor to suppress.
        assert fresh.json()["events"] == first.json()["events"]
        for bad in ("", "x" * 256, "del\x7f"):
            refused = await service.sample.post(api, **{**headers, "Idempotency-Key": bad})
            assert refused.status_code == 400, bad
    assert pending(app) == 2 * len(first.json()["events"])


async def test_a_rejected_request_stores_nothing(
    service: Service, keyring_path: Path, database_url: str
) -> None:
    app = service.factory(
        settings_for(service, keyring_path=keyring_path, database_url=database_url)
    )
    async with client_of(app) as api:
        got = await api.post(
            service.sample.path,
            content=b'{"nhsNumber": "9990000123"}',
            headers={
                "content-type": service.sample.content_type,
                **bearer(token(keyring_path, service.agency)),
            },
        )
        assert got.status_code == 422
        assert "9990000123" not in got.text
    assert pending(app) == 0


async def test_a_body_that_does_not_decode_is_422_like_any_json_that_does_not_parse(
    service: Service, keyring_path: Path, tmp_path: Path
) -> None:
    app = service.factory(
        settings_for(service, keyring_path=keyring_path, database_url=f"sqlite:///{tmp_path}/o.db")
    )
    auth = bearer(token(keyring_path, service.agency))
    async with client_of(app) as api:
        # A syntax error; not UTF-8; a number of more digits than Python converts.
        for body in (b'{"nhsNumber": "9990000123', b'{"a": "\xff"}', b'{"n": %s}' % (b"9" * 5000)):
            got = await api.post(
                service.sample.path,
                content=body,
                headers={"content-type": service.sample.content_type, **auth},
            )
            assert got.status_code == 422, body[:20]
            assert [p["type"] for p in got.json()["detail"]] == ["json_invalid"]
            assert "9990000123" not in got.text


async def test_the_override_headers_are_checked_and_a_refusal_names_the_header(
    service: Service, keyring_path: Path, tmp_path: Path
) -> None:
    app = service.factory(
        settings_for(service, keyring_path=keyring_path, database_url=f"sqlite:///{tmp_path}/o.db")
    )
    why, role = "Safeguarding-Override-Justification", "Safeguarding-Override-Role"
    reason = "Risk of significant harm if parents told"
    async with client_of(app) as api:
        for headers, refused in (
            ({why: "too short"}, why),
            ({why: reason}, role),
            ({why: reason, role: "x"}, role),
            ({why: "x" * 2001, role: "ED consultant"}, why),
            ({role: "ED consultant"}, why),
        ):
            got = await service.sample.post(
                api, **bearer(token(keyring_path, service.agency)), **headers
            )
            assert got.status_code == 422, headers
            assert got.json()["detail"][0]["loc"] == ["header", refused], headers
    assert pending(app) == 0


async def test_every_secured_operation_documents_its_answers(
    service: Service, keyring_path: Path, database_url: str
) -> None:
    app = service.factory(
        settings_for(service, keyring_path=keyring_path, database_url=database_url)
    )
    async with client_of(app) as api:
        openapi = (await api.get("/openapi.json")).json()
    assert "AgencyKey" in openapi["components"]["securitySchemes"]
    for path, methods in openapi["paths"].items():
        for method, op in methods.items():
            if "operations" in op.get("tags", []):
                assert "security" not in op, path
                continue
            assert {"401", "403"} <= set(op["responses"]), (method, path)
            assert op["security"] == [{"AgencyKey": []}], (method, path)
            if method == "post":
                assert {"202", "400", "422"} <= set(op["responses"]), (method, path)
                names = {p["name"] for p in op.get("parameters", [])}
                assert "Idempotency-Key" in names, path


async def test_every_native_sample_is_accepted(
    service: Service, keyring_path: Path, database_url: str
) -> None:
    """Each agency's native formats, as its systems send them (tests/data/<agency>/)."""
    app = service.factory(
        settings_for(service, keyring_path=keyring_path, database_url=database_url)
    )
    expected = 0
    async with client_of(app) as api:
        for sample, events in SAMPLES[service.name]:
            got = await sample.post(api, **bearer(token(keyring_path, service.agency)))
            assert got.status_code == 202, (sample.path, got.text)
            assert len(got.json()["events"]) == events, sample.path
            expected += events
    assert pending(app) == expected


async def test_uploads_refuse_other_media_types_and_oversized_bodies(
    service: Service, keyring_path: Path, tmp_path: Path
) -> None:
    app = service.factory(
        settings_for(service, keyring_path=keyring_path, database_url=f"sqlite:///{tmp_path}/o.db")
    )
    uploads = [s for s, _ in SAMPLES[service.name] if s.content_type != "application/json"]
    if not uploads:
        pytest.skip(f"{service.name} takes JSON bodies only")
    auth = bearer(token(keyring_path, service.agency))
    async with client_of(app) as api:
        for s in uploads:
            wrong = await api.post(
                s.path, content=s.body, headers={"content-type": "text/plain", **auth}
            )
            assert wrong.status_code == 415, s.path
            huge = await api.post(
                s.path,
                content=b"x" * (6 * 1024 * 1024),
                headers={"content-type": s.content_type, **auth},
            )
            assert huge.status_code == 413, s.path
            # A DSL whose name is only whitespace (what schemathesis sent) is no name.
            blank = s.path.replace("dsl_name=Alex%20Teacher", "dsl_name=%0D")
            if blank != s.path:
                said = await api.post(
                    blank, content=s.body, headers={"content-type": s.content_type, **auth}
                )
                assert said.status_code == 422, (s.path, said.text)
                assert said.json()["detail"][0]["loc"] == ["query", "dsl_name"]
    assert pending(app) == 0


async def test_the_inbox_opens_fields_encrypted_to_this_agency_only(
    service: Service, keyring_path: Path, tmp_path: Path
) -> None:
    # The agency made its own pair (its service, run by the agency, holds the private half).
    own = tmp_path / "own.key"
    public = parse_public(new_recipient_key(own))
    app = service.factory(
        settings_for(
            service,
            keyring_path=keyring_path,
            database_url=f"sqlite:///{tmp_path}/o.db",
            agency_key_file=own,
        )
    )
    rt = runtime_of(app)
    other = next(s for s in SERVICES.values() if s.agency != service.agency)
    theirs = parse_public(new_recipient_key(tmp_path / "theirs.key"))
    sealed = seal(public, recipient=service.agency, path="subject.nhs_number", value="9990000123")
    # What the hub writes now: a value under a data key of the window (env1.)
    enveloped = DataKeys({service.agency: public}).seal(
        recipient=service.agency, path="subject.postcode", value="NS1 4AP"
    )
    foreign = seal(
        theirs,
        recipient=other.agency,
        path="plan.category",
        value="neglect",
    )
    event = CloudEvent(
        type="socialcare.child_protection_plan.started",
        source="/agencies/la-northshire",
        data={
            "subject": {"nhs_number": sealed, "postcode": enveloped},
            "plan": {"category": foreign},
        },
        key="k",
    )
    assert rt.inbox.add([event, event], {0: 2}) == 1  # a delivery read twice is kept once
    async with client_of(app) as api:
        page = (await api.get("/inbox", headers=bearer(token(keyring_path, service.agency)))).json()
    (item,) = page["items"]
    assert item["data"]["subject"]["nhs_number"] == "9990000123"
    assert item["data"]["subject"]["postcode"] == "NS1 4AP"
    assert item["decrypted_fields"] == ["subject.nhs_number", "subject.postcode"]
    assert item["data"]["plan"]["category"] == foreign
    assert item["sealed_fields"] == ["plan.category"]


async def test_no_body_is_read_before_the_key_is_checked(
    service: Service, keyring_path: Path, tmp_path: Path
) -> None:
    app = service.factory(
        settings_for(service, keyring_path=keyring_path, database_url=f"sqlite:///{tmp_path}/o.db")
    )
    path = service.sample.path
    async with client_of(app) as api:
        # Malformed JSON without a key: 401, so nothing about the input rules is learnt.
        bad = await api.post(
            path, content=b"{not json", headers={"content-type": "application/json"}
        )
        assert bad.status_code == 401
        own = bearer(token(keyring_path, service.agency))

        async def chunks() -> AsyncIterator[bytes]:
            yield service.sample.body

        # A length beside a chunked body: the length cannot be trusted (request smuggling).
        both = {"content-length": "2", "transfer-encoding": "chunked"}
        chunked = await api.post(
            path,
            content=chunks(),
            headers={"content-type": service.sample.content_type, **own, **both},
        )
        assert chunked.status_code == 400
        huge = await api.post(
            path,
            content=b" " * (7 * 1024 * 1024),
            headers={"content-type": service.sample.content_type, **own},
        )
        assert huge.status_code == 413
        assert huge.json()["detail"][0]["type"] == "body.too_large"
    assert pending(app) == 0


async def test_a_retry_under_the_same_key_links_and_queues_nothing_again(
    service: Service, keyring_path: Path, tmp_path: Path
) -> None:
    app = service.factory(
        settings_for(service, keyring_path=keyring_path, database_url=f"sqlite:///{tmp_path}/o.db")
    )
    index = runtime_of(app).index
    headers = {**bearer(token(keyring_path, service.agency)), "Idempotency-Key": "k-1"}
    async with client_of(app) as api:
        first = await service.sample.post(api, **headers)
        assert first.status_code == 202
        with index.engine.connect() as conn:
            before = conn.exec_driver_sql("SELECT count(*) FROM person_index_link").scalar()
        index.resolve_all = None  # type: ignore[assignment,method-assign]  # must not be called
        again = await service.sample.post(api, **headers)
        assert again.status_code == 202 and again.json() == first.json()
        with index.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM person_index_link").scalar() == before


async def test_metrics_count_what_was_accepted_and_name_no_one(
    service: Service, keyring_path: Path, tmp_path: Path
) -> None:
    app = service.factory(
        settings_for(service, keyring_path=keyring_path, database_url=f"sqlite:///{tmp_path}/o.db")
    )
    async with client_of(app) as api:
        sent = await service.sample.post(api, **bearer(token(keyring_path, service.agency)))
        assert sent.status_code == 202
        refused = await api.post(service.sample.path, content=b"{}")  # no key
        assert refused.status_code == 401
        scraped = await api.get("/metrics")  # Prometheus scrapes without a key
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    agency = f'agency="{service.agency}"'
    for event in sent.json()["events"]:
        line = f'infoshare_agency_events_accepted_total{{{agency},event_type="{event["type"]}"}}'
        assert line in text
    assert f"infoshare_outbox_pending{{{agency}}} {float(pending(app))}" in text
    route = service.sample.path.split("?")[0]
    for status, template in (("202", route), ("401", "unmatched")):  # refused ones too
        labels = f'http_request_method="POST",http_response_status_code="{status}"'
        assert f'{HTTP_COUNT}{{{labels},http_route="{template}"}} 1.0' in text
    for value in _identifying_values(service.sample.body):
        assert value not in text


HTTP_COUNT = "http_server_request_duration_seconds_count"


def _identifying_values(body: bytes) -> list[str]:
    """The sample's identifiers and names, wherever they sit in it."""
    import re

    text = body.decode("utf-8", errors="replace")
    found = re.findall(r"\b999[0-9]{7}\b|\b[A-Z][0-9]{11}[0-9A-Z]\b", text)
    found += re.findall(
        r'"(?:firstName|lastName|forename|surname|family|given)":\s*"([^"]+)"', text
    )
    return found
