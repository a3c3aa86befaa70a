"""The delivery API's contract without Kafka: the app's routes over a real SQLite file
(its background tasks not started): validation answered as 422 naming the field and the
rule and never echoing what was sent, webhook hosts resolved (by a resolver the test
controls) and refused when any address is internal, per-agency tokens, the subscription
life cycle, and every endpoint documented."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.delivery.app import create_app
from services.delivery.settings import DeliverySettings
from tests.integration.test_delivery_harness import ATTENDANCE, ED, LA, token

SECRET_LOOKING = "https://hooks.example.org/very-private-path-9990000123"
DNS = {  # what the test's resolver answers
    "hooks.example.org": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "loopback.example.org": ["127.0.0.1"],
    "metadata.example.org": ["169.254.169.254"],
    "metadata6.example.org": ["fd00:ec2::254"],
    "lan.example.org": ["10.20.30.40"],
    "cgnat.example.org": ["100.64.0.9"],
    "linklocal.example.org": ["fe80::1"],
    "mixed.example.org": ["93.184.215.14", "192.168.1.20"],
}


async def resolver(host: str) -> Sequence[str]:
    if host not in DNS:
        raise OSError("no such name")
    return DNS[host]


def _settings(database_url: str, keyring_path: Path, **extra: Any) -> DeliverySettings:
    return DeliverySettings(
        keyring_file=keyring_path,
        delivery_database_url=database_url,
        **extra,
    )


@pytest.fixture
async def api(database_url: str, keyring_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(_settings(database_url, keyring_path), resolver=resolver)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://delivery") as client:
        yield client


def _body(**extra: Any) -> dict[str, Any]:
    return {"event_types": [ATTENDANCE], "channel": "inbox", **extra}


@pytest.mark.parametrize(
    ("body", "loc", "rule"),
    [
        (_body(event_types=["no.such.type"]), ["body", "event_types", 0], "event_type.unknown"),
        (_body(event_types=[]), ["body", "event_types"], "too_short"),
        (
            _body(filters=[{"path": "subject.nhs_number", "op": "eq", "value": "9990000123"}]),
            ["body", "filters", 0],
            "filter.path",
        ),
        (
            _body(filters=[{"path": "data.a", "op": "in", "value": "9990000123"}]),
            ["body", "filters", 0],
            "filter.value",
        ),
        (
            _body(filters=[{"path": "data.a", "op": "like", "value": "x"}]),
            ["body", "filters", 0, "op"],
            "enum",
        ),
        (_body(content="everything"), ["body", "content"], "enum"),
        (_body(channel="webhook"), ["body"], "endpoint.required"),
        (_body(endpoint=SECRET_LOOKING), ["body"], "channel.inbox_fields"),
        (
            _body(channel="webhook", endpoint="http://hooks.example.org/x"),
            ["body", "endpoint"],
            "endpoint.https_required",
        ),
        (
            _body(channel="webhook", endpoint="http://127.0.0.1:9/x"),  # loopback not allowed
            ["body", "endpoint"],
            "endpoint.https_required",
        ),
        (
            _body(channel="webhook", endpoint="https://user:9990000123@hooks.example.org/"),
            ["body", "endpoint"],
            "endpoint.credentials",
        ),
        (
            _body(channel="webhook", endpoint=SECRET_LOOKING, heartbeat_period=0),
            ["body", "heartbeat_period"],
            "greater_than_equal",
        ),
    ],
)
async def test_a_bad_subscription_is_a_422_naming_field_and_rule_never_the_value(
    api: httpx.AsyncClient, keyring_path: Path, body: dict[str, Any], loc: list[Any], rule: str
) -> None:
    response = await api.post(
        f"/recipients/{LA}/subscriptions", json=body, headers=token(keyring_path, LA)
    )
    assert response.status_code == 422, response.text
    (detail,) = response.json()["detail"]
    assert (detail["loc"], detail["type"]) == (loc, rule)
    assert "9990000123" not in response.text and "hooks.example.org" not in response.text
    listed = await api.get(f"/recipients/{LA}/subscriptions", headers=token(keyring_path, LA))
    assert listed.json() == []  # nothing half-created


async def test_http_to_loopback_only_when_the_setting_allows_it(
    database_url: str, keyring_path: Path
) -> None:
    app = create_app(
        _settings(database_url, keyring_path, delivery_webhook_allow_http_loopback=True),
        resolver=resolver,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://delivery"
    ) as api:

        async def create(url: str) -> int:
            body = _body(channel="webhook", endpoint=url)
            headers = token(keyring_path, LA)
            return (
                await api.post(f"/recipients/{LA}/subscriptions", json=body, headers=headers)
            ).status_code

        assert await create("http://127.0.0.1:9/hook") == 201
        assert await create("http://localhost:9/hook") == 201
        assert await create("http://hooks.example.org/hook") == 422


@pytest.mark.parametrize(
    ("host", "rule", "said"),
    [
        ("loopback.example.org", "endpoint.internal", "a loopback address"),
        ("metadata.example.org", "endpoint.internal", "a cloud metadata address"),
        ("metadata6.example.org", "endpoint.internal", "a cloud metadata address"),
        ("lan.example.org", "endpoint.internal", "a private-network address"),
        ("cgnat.example.org", "endpoint.internal", "a carrier-grade NAT address"),
        ("linklocal.example.org", "endpoint.internal", "a link-local address"),
        ("mixed.example.org", "endpoint.internal", "a private-network address"),
        ("nowhere.example.org", "endpoint.unresolvable", "did not resolve"),
    ],
)
async def test_a_host_that_resolves_to_an_internal_address_is_refused(
    api: httpx.AsyncClient, keyring_path: Path, host: str, rule: str, said: str
) -> None:
    body = _body(channel="webhook", endpoint=f"https://{host}/hook-9990000123")
    headers = token(keyring_path, LA)
    response = await api.post(f"/recipients/{LA}/subscriptions", json=body, headers=headers)
    assert response.status_code == 422, response.text
    (detail,) = response.json()["detail"]
    assert (detail["loc"], detail["type"]) == (["body", "endpoint"], rule)
    assert said in detail["msg"]
    for leaked in ("example", "9990000123", *DNS.get(host, [])):
        assert leaked not in response.text
    listed = await api.get(f"/recipients/{LA}/subscriptions", headers=headers)
    assert listed.json() == []


async def test_a_recipient_may_be_allowed_private_endpoints_but_never_metadata(
    database_url: str, keyring_path: Path
) -> None:
    settings = _settings(database_url, keyring_path, delivery_webhook_private_agencies=[LA])
    app = create_app(settings, resolver=resolver)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://delivery"
    ) as api:

        async def create(agency: str, host: str) -> int:
            body = _body(channel="webhook", endpoint=f"https://{host}/hook")
            url = f"/recipients/{agency}/subscriptions"
            return (await api.post(url, json=body, headers=token(keyring_path, agency))).status_code

        assert await create(LA, "lan.example.org") == 201
        assert await create(LA, "cgnat.example.org") == 201
        assert await create(LA, "mixed.example.org") == 201
        assert await create(LA, "10.1.2.3") == 201
        assert await create(ED, "lan.example.org") == 422  # another agency: not allowed
        assert await create(ED, "10.1.2.3") == 422
        for host in ("metadata.example.org", "linklocal.example.org", "loopback.example.org"):
            assert await create(LA, host) == 422, host


async def test_tokens_are_per_agency(api: httpx.AsyncClient, keyring_path: Path) -> None:
    la, ed = token(keyring_path, LA), token(keyring_path, ED)
    url = f"/recipients/{LA}/subscriptions"
    assert (await api.post(url, json=_body())).status_code == 401
    assert (
        await api.post(url, json=_body(), headers={"Authorization": "Bearer nope"})
    ).status_code == 401
    assert (await api.post(url, json=_body(), headers=ed)).status_code == 403
    created = await api.post(url, json=_body(), headers=la)
    sub = created.json()["id"]
    for path in (f"{url}/{sub}", f"/subscriptions/{sub}/status", f"/subscriptions/{sub}/events"):
        assert (await api.get(path, headers=ed)).status_code == 403, path
        assert (await api.get(path)).status_code == 401, path
    # ED's own path does not reach LA's subscription either.
    assert (await api.get(f"/recipients/{ED}/subscriptions/{sub}", headers=ed)).status_code == 403
    assert (await api.get(f"/recipients/{LA}/inbox")).status_code == 401


async def test_a_subscription_lives_and_dies(api: httpx.AsyncClient, keyring_path: Path) -> None:
    la = token(keyring_path, LA)
    url = f"/recipients/{LA}/subscriptions"
    hook = _body(
        channel="webhook",
        endpoint="https://hooks.example.org/infoshare",
        content="full",
        heartbeat_period=60,
        filters=[{"path": "data.attendance.site.ods_code", "op": "in", "value": ["RVR01"]}],
    )
    created = await api.post(url, json=hook, headers=la)
    assert created.status_code == 201
    sub = created.json()
    assert sub["secret"].startswith("whsec_") and len(sub["secret"]) > 40  # shown this once
    assert sub["status"] == "active" and sub["events_since_subscription_start"] == 0
    inbox = (await api.post(url, json=_body(), headers=la)).json()
    assert inbox["secret"] is None and inbox["content"] == "id-only"  # the safe default

    listed = (await api.get(url, headers=la)).json()
    assert [s["id"] for s in listed] == [sub["id"], inbox["id"]]
    assert all("secret" not in s for s in listed)
    read = (await api.get(f"{url}/{sub['id']}", headers=la)).json()
    assert "secret" not in read and read["filters"] == hook["filters"]

    off = await api.patch(f"{url}/{sub['id']}", json={"status": "off"}, headers=la)
    assert off.json()["status"] == "off"
    assert (await api.get(f"/subscriptions/{sub['id']}/status", headers=la)).json()[
        "status"
    ] == "off"
    assert (
        await api.patch(f"{url}/{sub['id']}", json={"status": "gone"}, headers=la)
    ).status_code == 422
    assert (await api.delete(f"{url}/{sub['id']}", headers=la)).status_code == 204
    assert (await api.get(f"{url}/{sub['id']}", headers=la)).status_code == 404
    assert (await api.get(f"/subscriptions/{sub['id']}/status", headers=la)).status_code == 404

    ack = await api.post(f"/subscriptions/{inbox['id']}/ack", json={"through": 1}, headers=la)
    assert ack.status_code == 409  # nothing numbered yet
    for not_a_number in (True, "1", 1.5):  # JSON true is not 1 (the fuzzer found it taken)
        wrong = {"through": not_a_number}
        ack = await api.post(f"/subscriptions/{inbox['id']}/ack", json=wrong, headers=la)
        assert ack.status_code == 422, not_a_number
    events = (await api.get(f"/subscriptions/{inbox['id']}/events", headers=la)).json()
    assert events["notification_events"] == [] and events["events_since_subscription_start"] == 0


async def test_every_endpoint_is_documented(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            where = f"{method.upper()} {path}"
            assert op.get("summary") and op.get("tags"), where
            if path != "/healthz":
                assert op.get("description"), where


async def test_huge_or_reversed_ranges_are_a_422_not_a_500(
    api: httpx.AsyncClient, keyring_path: Path
) -> None:
    la = token(keyring_path, LA)
    sub = (await api.post(f"/recipients/{LA}/subscriptions", json=_body(), headers=la)).json()
    huge = str(2**64)
    for path, params in (
        (f"/subscriptions/{sub['id']}/events", {"since": huge}),
        (f"/subscriptions/{sub['id']}/events", {"until": huge}),
        (f"/subscriptions/{sub['id']}/notifications", {"after": huge}),
        (f"/recipients/{LA}/inbox", {"after": huge}),
        (f"/subscriptions/{sub['id']}/events", {"since": "3", "until": "2"}),
    ):
        response = await api.get(path, params=params, headers=la)
        assert response.status_code == 422, (path, params, response.text)
