"""Webhook push on the real broker to a real local HTTP receiver: a receiver that is down
for a stretch gets everything once back, in order, once each after its own deduplication,
every signature valid; one that never comes back within the horizon leaves a dead letter,
an UNDELIVERABLE audit record and an alert; 410 turns a subscription off; a host name
pointed at an internal address after the subscription was made is not pushed to."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.backbone.kafka_access import KafkaAccess
from services.backbone.topics import Topics
from services.delivery.deadletter import undeliverable_audit_id
from services.delivery.settings import DeliverySettings
from tests.integration.kafka_helpers import eventually, read_topic
from tests.integration.test_delivery_harness import (
    ATTENDANCE,
    ED,
    LA,
    Receiver,
    delivery,
    fast_settings,
    publish,
    running,
    token,
)

pytestmark = pytest.mark.kafka


def _count(n: int) -> Callable[[list[Any]], bool]:
    return lambda records: len(records) >= n


async def _status(api: httpx.AsyncClient, sub_id: str, auth: dict[str, str]) -> dict[str, Any]:
    status: dict[str, Any] = (await api.get(f"/subscriptions/{sub_id}/status", headers=auth)).json()
    return status


async def _webhook(
    api: httpx.AsyncClient, auth: dict[str, str], receiver: Receiver, **extra: Any
) -> str:
    body = {"event_types": [ATTENDANCE], "channel": "webhook", "endpoint": receiver.url, **extra}
    created = await api.post(f"/recipients/{LA}/subscriptions", headers=auth, json=body)
    assert created.status_code == 201, created.text
    receiver.secret = created.json()["secret"]
    sub_id: str = created.json()["id"]
    return sub_id


async def test_a_receiver_down_for_a_stretch_gets_everything_in_order_once(
    tmp_path: Path, keyring_path: Path, kafka_access: KafkaAccess, namespace: str
) -> None:
    settings = fast_settings(
        tmp_path=tmp_path, keyring_path=keyring_path, access=kafka_access, namespace=namespace
    )
    topic = Topics(namespace=namespace).deliver(LA)
    la = token(keyring_path, LA)
    published = [delivery(n=i) for i in range(6)]
    receiver = Receiver(answer=503, fail_after_accept={2, 5})
    async with running(settings) as api:
        sub = await _webhook(api, la, receiver, content="full", heartbeat_period=1)
        await publish(kafka_access, topic, [r for _, r in published[:3]])

        async def open_on_failed_requests() -> bool:
            status = await _status(api, sub, la)
            return status["breaker"] == "open" and "request failed" in (status["last_error"] or "")

        # Down: nothing listens on the port. Failures open the endpoint's breaker (read in
        # one status: a probe after the cool-down may change one field before the other).
        await eventually("the breaker to open on failed requests", open_on_failed_requests)
        # Up, but answering 503 for a while; more events arrive meanwhile.
        await receiver.start()
        await publish(kafka_access, topic, [r for _, r in published[3:]])

        async def refused(n: int) -> bool:
            return len(receiver.requests) >= n

        await eventually("503s from the receiver", lambda: refused(2))
        receiver.answer = 200  # back for good (it still loses the answer for 2 and 5 once)

        async def all_kept() -> bool:
            status = await _status(api, sub, la)
            return len(receiver.kept) == 6 and status["notifications"]["pending"] == 0

        await eventually("every notification at the receiver", all_kept)

        async def heartbeat() -> bool:
            return bool(receiver.heartbeats)

        await eventually("a heartbeat once all is quiet", heartbeat, wait_s=10)
        status = await _status(api, sub, la)
        await receiver.stop()

    notes = list(receiver.kept.values())  # first copy of each Idempotency-Key, in arrival order
    events = [n["notification_events"][0] for n in notes]
    assert [e["event_number"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e["event"]["id"] for e in events] == [e.id for e, _ in published]
    assert events[0]["event"]["data"] == dict(published[0][0].data)
    assert list(receiver.kept) == [f"{sub}:{n}" for n in range(1, 7)]
    assert all(r.signed for r in receiver.requests)
    repeats = [r.key for r in receiver.requests if r.key in (f"{sub}:2", f"{sub}:5")]
    assert len(repeats) >= 4  # sent again after the lost answers; dropped by the receiver
    assert status["last_acknowledged"] == 6 and status["breaker"] == "closed"
    assert status["notifications"] == {"pending": 0, "delivered": 6, "dead_lettered": 0}
    assert receiver.heartbeats[0]["events_since_subscription_start"] == 6
    assert receiver.heartbeats[0]["notification_events"] == []


async def test_a_receiver_that_never_comes_back_is_dead_lettered_audited_and_alerted(
    tmp_path: Path,
    keyring_path: Path,
    kafka_access: KafkaAccess,
    namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings: DeliverySettings = fast_settings(
        tmp_path=tmp_path,
        keyring_path=keyring_path,
        access=kafka_access,
        namespace=namespace,
        delivery_retry_horizon_s=1.0,
    )
    topics = Topics(namespace=namespace)
    la = token(keyring_path, LA)
    published = [delivery(n=i) for i in range(2)]
    receiver = Receiver()  # never started within the horizon
    caplog.set_level(logging.ERROR, logger="services.delivery")
    async with running(settings) as api:
        sub = await _webhook(api, la, receiver, content="id-only")
        await publish(kafka_access, topics.deliver(LA), [r for _, r in published])

        dead = await read_topic(topics.dlq("delivery"), kafka_access, until=_count(2))
        for record, (_, (key, value, headers)) in zip(dead, published, strict=True):
            assert (record.key, record.value) == (key, value)  # the delivery exactly as read
            got = dict(record.headers)
            assert all(got[name] == raw for name, raw in headers)
            assert got["dlq_topic"] == topics.deliver(LA).encode()
            assert got["dlq_subscription"] == sub.encode()
            assert {"dlq_reason", "dlq_partition", "dlq_offset", "dlq_event_number"} <= set(got)
        assert [dict(r.headers)["dlq_event_number"] for r in dead] == [b"1", b"2"]

        audit = await read_topic(topics.audit_activity, kafka_access, until=_count(2))
        records = [orjson.loads(a.value) for a in audit]
        assert sorted(r["audit_id"] for r in records) == sorted(
            undeliverable_audit_id(sub, n) for n in (1, 2)
        )
        assert {(r["action"], r["decision"], r["recipient"]) for r in records} == {
            ("deliver", "undeliverable", LA)
        }
        assert sorted(r["delivery_id"] for r in records) == sorted(e.id for e, _ in published)
        for event, _ in published:  # no payload value reaches the audit trail
            assert event.data["subject"]["pseudonym"].encode() not in b"".join(
                a.value for a in audit
            )

        # The service writes a dead letter to Kafka before its store records it (a crash in
        # between writes it again): the store may be a moment behind the topic.
        async def both_alerted() -> bool:
            got = (await api.get(f"/recipients/{LA}/alerts", headers=la)).json()
            return len(got) == 2

        await eventually("both notifications listed as alerts", both_alerted)
        alerts = (await api.get(f"/recipients/{LA}/alerts", headers=la)).json()
        assert sorted(a["event_number"] for a in alerts) == [1, 2]
        assert {a["subscription"] for a in alerts} == {sub}
        # Per agency: another agency sees none of them, on its own path or on this one.
        ed = token(keyring_path, ED)
        assert (await api.get(f"/recipients/{ED}/alerts", headers=ed)).json() == []
        assert (await api.get(f"/recipients/{LA}/alerts", headers=ed)).status_code == 403
        assert (await api.get(f"/recipients/{LA}/alerts")).status_code == 401
        assert (await api.get("/alerts")).status_code == 404
        assert (await api.get("/healthz")).json()["alerts"] == 2
        status = await _status(api, sub, la)
        assert status["notifications"]["dead_lettered"] == 2
        lines = [r.getMessage() for r in caplog.records if "ALERT undeliverable" in r.getMessage()]
        assert len(lines) == 2 and all(sub in line for line in lines)
        assert not [
            line for line in lines for e, _ in published if e.data["subject"]["pseudonym"] in line
        ]

        # The receiver comes back at last; a resend delivers the dead-lettered, in order.
        await receiver.start()
        resent = await api.post(f"/subscriptions/{sub}/resend", headers=la)
        assert resent.json()["requeued"] == 2

        async def delivered() -> bool:
            return len(receiver.kept) == 2

        await eventually("the resent notifications", delivered)
        await receiver.stop()
    numbers = [n["notification_events"][0]["event_number"] for n in receiver.kept.values()]
    assert numbers == [1, 2]
    focus = [n["notification_events"][0]["focus"] for n in receiver.kept.values()]
    assert focus[0]["url"] == f"/recipients/{LA}/deliveries/{published[0][0].id}"
    assert "event" not in receiver.kept[f"{sub}:1"]["notification_events"][0]  # id-only


async def test_410_from_the_endpoint_turns_the_subscription_off(
    tmp_path: Path, keyring_path: Path, kafka_access: KafkaAccess, namespace: str
) -> None:
    settings = fast_settings(
        tmp_path=tmp_path, keyring_path=keyring_path, access=kafka_access, namespace=namespace
    )
    la = token(keyring_path, LA)
    receiver = Receiver(answer=410)
    await receiver.start()
    try:
        async with running(settings) as api:
            sub = await _webhook(api, la, receiver)
            await publish(kafka_access, Topics(namespace=namespace).deliver(LA), [delivery()[1]])

            async def off() -> bool:
                return bool((await _status(api, sub, la))["status"] == "off")

            await eventually("the subscription to be turned off", off)
            status = await _status(api, sub, la)
            assert "410" in status["last_error"]
            assert status["notifications"]["pending"] == 1  # kept until switched on again
    finally:
        await receiver.stop()


async def test_a_host_rebound_to_an_internal_address_is_refused_at_every_push(
    tmp_path: Path, keyring_path: Path, kafka_access: KafkaAccess, namespace: str
) -> None:
    settings = fast_settings(
        tmp_path=tmp_path,
        keyring_path=keyring_path,
        access=kafka_access,
        namespace=namespace,
        delivery_webhook_allow_http_loopback=False,
    )
    dns = {"hooks.example.test": ["93.184.215.14"]}  # public when the subscription is made
    asked: list[str] = []

    async def resolver(host: str) -> Sequence[str]:
        asked.append(host)
        return dns[host]

    la = token(keyring_path, LA)
    url = "https://hooks.example.test/hook"
    body = {"event_types": [ATTENDANCE], "channel": "webhook", "endpoint": url}
    async with running(settings, resolver=resolver) as api:
        created = await api.post(f"/recipients/{LA}/subscriptions", headers=la, json=body)
        assert created.status_code == 201, created.text
        sub = created.json()["id"]
        assert asked == ["hooks.example.test"]
        for rebound, said in (
            ("127.0.0.1", "a loopback address"),
            ("169.254.169.254", "a cloud metadata address"),
        ):
            dns["hooks.example.test"] = [rebound]  # the name's owner points it inside
            refused = await api.post(f"/recipients/{LA}/subscriptions", headers=la, json=body)
            assert refused.status_code == 422 and said in refused.text
            assert rebound not in refused.text and "example" not in refused.text
            if rebound == "127.0.0.1":
                await publish(
                    kafka_access, Topics(namespace=namespace).deliver(LA), [delivery()[1]]
                )

            async def refused_at_push(said: str = said) -> bool:
                last: str | None = (await _status(api, sub, la))["last_error"]
                return last == (
                    f"refused: the endpoint's host resolves to {said}: webhooks go to the "
                    "public internet only"
                )

            await eventually(f"a push refused for {said}", refused_at_push)
        status = await _status(api, sub, la)
        assert status["notifications"]["pending"] == 1  # retried, never delivered
