"""The delivery service continues the event's trace (sealed in the record) through the read,
every webhook attempt and the recipient's pull, and counts deliveries, retries, circuits
and its lag."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.backbone import envelope, telemetry
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import Keyring
from services.backbone.topics import Topics
from tests.integration.kafka_helpers import eventually
from tests.integration.test_delivery_harness import (
    ATTENDANCE,
    LA,
    Receiver,
    delivery,
    fast_settings,
    publish,
    running,
    token,
)
from tests.spans import spans

__all__ = ["spans"]
pytestmark = pytest.mark.kafka


async def test_each_attempt_and_each_pull_is_a_span_of_the_events_trace(
    tmp_path: Path,
    keyring_path: Path,
    keyring: Keyring,
    kafka_access: KafkaAccess,
    namespace: str,
    spans: InMemorySpanExporter,
) -> None:
    settings = fast_settings(
        tmp_path=tmp_path, keyring_path=keyring_path, access=kafka_access, namespace=namespace
    )
    topic = Topics(namespace=namespace).deliver(LA)
    seal = telemetry.TraceSeal.of(keyring.trace_seal)
    assert seal is not None
    with trace.get_tracer("test").start_as_current_span(f"create {topic}") as made:
        _, (key, value, headers) = delivery()
        sealed: envelope.Headers = [*headers, *seal.seal()]
    ours = made.get_span_context().trace_id
    la = token(keyring_path, LA)
    receiver = Receiver(fail_after_accept={1})  # the first push fails after it was taken
    await receiver.start()
    try:
        async with running(settings) as api:
            body = {"event_types": [ATTENDANCE], "channel": "webhook", "endpoint": receiver.url}
            hook = await api.post(f"/recipients/{LA}/subscriptions", headers=la, json=body)
            receiver.secret = hook.json()["secret"]
            inbox = await api.post(
                f"/recipients/{LA}/subscriptions",
                headers=la,
                json={"event_types": [ATTENDANCE], "channel": "inbox"},
            )
            await publish(kafka_access, topic, [(key, value, sealed)])

            async def delivered() -> bool:
                return len(receiver.kept) == 1 and len(receiver.requests) >= 2

            await eventually("the push to succeed on its second attempt", delivered)
            pulled = await api.get(f"/subscriptions/{inbox.json()['id']}/notifications", headers=la)
            assert len(pulled.json()["notification_events"]) == 1
            acked = await api.post(
                f"/subscriptions/{inbox.json()['id']}/ack", headers=la, json={"through": 1}
            )
            assert acked.status_code == 200, acked.text
            text = await _scraped(api)
    finally:
        await receiver.stop()

    mine = [s for s in spans.get_finished_spans() if s.context.trace_id == ours]
    names = sorted(s.name for s in mine)
    assert names == ["POST", "POST", f"create {topic}", f"process {topic}", f"receive {topic}"]
    posts = sorted((s for s in mine if s.name == "POST"), key=lambda s: s.start_time or 0)
    assert [(s.attributes or {})["infoshare.attempt"] for s in posts] == [1, 2]
    assert [(s.attributes or {}).get("http.response.status_code") for s in posts] == [500, 200]
    assert posts[0].status.status_code is trace.StatusCode.ERROR
    assert all(s.kind is trace.SpanKind.CLIENT for s in posts)
    assert all((s.attributes or {})["server.address"] == "127.0.0.1" for s in posts)
    (received,) = [s for s in mine if s.name == f"receive {topic}"]
    assert received.links and received.links[0].context.trace_id != ours  # the pull request

    la_label = f'recipient="{LA}"'
    assert f"infoshare_webhook_retries_total{{{la_label}}} 1.0" in text
    assert (
        f'infoshare_deliveries_total{{channel="webhook",outcome="delivered",{la_label}}} 1.0'
        in text
    )
    pulled_ = f'infoshare_deliveries_total{{channel="pull",outcome="delivered",{la_label}}} 1.0'
    assert pulled_ in text
    assert f"infoshare_webhook_circuit_state{{{la_label}}} 0.0" in text
    lags = [line for line in text.splitlines() if line.startswith("infoshare_consumer_lag{")]
    assert lags and all(line.endswith(" 0.0") for line in lags)
    assert all('group="delivery"' in line for line in lags)


async def _scraped(api: httpx.AsyncClient) -> str:
    """The metrics once the reader has caught up with every partition it reads (the
    transaction's commit marker included)."""
    found: list[str] = []

    async def caught_up() -> bool:
        found[:] = [(await api.get("/metrics")).text]
        lags = [line for line in found[0].splitlines() if line.startswith("infoshare_consumer")]
        return bool(lags) and all(line.endswith(" 0.0") for line in lags)

    await eventually("the reader to catch up", caught_up)
    return found[0]
