"""The webhook dispatcher's decisions against a real database (SQLite here, PostgreSQL when
the harness names one), with a scripted endpoint instead of HTTP and a recording dead-letter
writer instead of Kafka: switching on starts the retry horizon afresh, the last try on the
horizon goes out, a resend is not undone by a worker in flight, and only an endpoint in
trouble trips its (per agency) circuit breaker."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import event, update
from sqlmodel import col, select

from services.delivery import queue, subscriptions
from services.delivery.backoff import RetryPolicy
from services.delivery.breaker import BreakerBoard
from services.delivery.deadletter import Undeliverable
from services.delivery.dispatcher import Changes, Dispatcher
from services.delivery.filters import parse_filters
from services.delivery.kafka_edge import DeadLetters
from services.delivery.model import Channel, Content, Delivered, Incoming, State, Status
from services.delivery.secret_box import SecretBox
from services.delivery.signing import new_secret
from services.delivery.store import DeliveryStore, db_time
from services.delivery.tables import NotificationRow, SubscriptionRow
from services.delivery.webhook import PushOutcome, WebhookSender
from tests.integration.test_delivery_harness import ATTENDANCE, ED, LA

URL = "https://hooks.example.org/infoshare"
HORIZON_S = 3600.0


class Letters(DeadLetters):
    def __init__(self) -> None:  # no producer: it only records
        self.dlq_topic = "dlq.delivery"
        self.letters: list[Undeliverable] = []

    async def undeliverable(self, u: Undeliverable) -> None:
        self.letters.append(u)


class Endpoint(WebhookSender):
    """Answers from a script; ``during`` runs while the request is in flight."""

    def __init__(self, *outcomes: PushOutcome) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[str] = []
        self.during: Callable[[], None] | None = None

    async def post(
        self,
        url: str,
        body: bytes,
        *,
        secret: str,
        idempotency_key: str,
        subscription_id: str,
        event_number: int | None,
        recipient: str,
    ) -> PushOutcome:
        assert secret.startswith("whsec_")  # opened from the store for this push
        self.calls.append(subscription_id)
        if self.during is not None:
            await asyncio.to_thread(self.during)
        return self.outcomes.pop(0)


OK = PushOutcome(ok=True)
DOWN = PushOutcome(ok=False, error="HTTP 503", endpoint_down=True)
BAD_REQUEST = PushOutcome(ok=False, error="HTTP 400")


def _store(url: str) -> DeliveryStore:
    box = SecretBox({"k1": os.urandom(32)}, active="k1")
    store = DeliveryStore(url, secret_box=box)
    store.create_schema()
    return store


def _dispatcher(store: DeliveryStore, endpoint: Endpoint, letters: Letters) -> Dispatcher:
    return Dispatcher(
        store=store,
        sender=endpoint,
        dead_letters=letters,
        policy=RetryPolicy(base_s=1, factor=2, cap_s=10, horizon_s=HORIZON_S),
        breakers=BreakerBoard(failure_threshold=1, cooldown_s=60),
        changes=Changes(),
        rand=lambda: 0.0,  # retry at once
    )


def _webhook(store: DeliveryStore, agency: str = LA) -> SubscriptionRow:
    spec = subscriptions.NewSubscription(
        agency=agency,
        event_types=[ATTENDANCE],
        filters=parse_filters([]),
        content=Content.ID_ONLY,
        channel=Channel.WEBHOOK,
        endpoint=URL,
        secret=new_secret(),
    )
    return subscriptions.create(store, spec, now=datetime.now(UTC))


def _deliver(store: DeliveryStore, agency: str = LA, key: bytes | None = None) -> None:
    store.ingest([_incoming(agency, key)], {}, now=datetime.now(UTC))


def _incoming(agency: str = LA, key: bytes | None = None) -> Incoming:
    data = {"attendance": {"site": {"ods_code": "RVR01"}}}
    event = Delivered(
        event_id=str(uuid.uuid4()),
        type=ATTENDANCE,
        source="/agencies/nhs-riverside-ed",
        time=datetime.now(UTC),
        protocol=None,
        identity_level=None,
        data=data,
    )
    return Incoming(agency, f"deliver.{agency}", 0, 0, key, orjson.dumps(data), [], event)


async def _push_head(dispatcher: Dispatcher, sub_id: str) -> bool:
    sub = subscriptions.get(dispatcher.store, sub_id)
    head = queue.head(dispatcher.store, sub_id)
    assert head is not None
    return await dispatcher._push_window(sub, [head], None)


def _only(store: DeliveryStore, sub_id: str) -> NotificationRow:
    with store.read() as s:
        return s.exec(
            select(NotificationRow).where(col(NotificationRow.subscription_id) == sub_id)
        ).one()


def _age(store: DeliveryStore, sub_id: str, *, queued_s: float, due_s: float | None) -> None:
    """Pretend time has passed: horizon started ``queued_s`` ago, next try ``due_s`` ago."""
    now = datetime.now(UTC)
    with store.write() as s:
        row = s.exec(
            select(NotificationRow).where(col(NotificationRow.subscription_id) == sub_id)
        ).one()
        row.queued_at = db_time(now - timedelta(seconds=queued_s))
        row.next_attempt_at = None if due_s is None else db_time(now - timedelta(seconds=due_s))
        s.add(row)


async def test_switching_back_on_gives_the_backlog_a_fresh_horizon(database_url: str) -> None:
    store, endpoint, letters = _store(database_url), Endpoint(DOWN, OK), Letters()
    dispatcher = _dispatcher(store, endpoint, letters)
    sub = _webhook(store)
    _deliver(store)
    assert not await _push_head(dispatcher, sub.id)  # tried once, failed
    assert _only(store, sub.id).attempts == 1
    subscriptions.set_status(store, sub.id, Status.OFF, now=datetime.now(UTC))
    _age(store, sub.id, queued_s=3 * HORIZON_S, due_s=2 * HORIZON_S)  # off for a long time
    dispatcher.breakers = BreakerBoard(failure_threshold=1, cooldown_s=60)  # mended meanwhile
    subscriptions.set_status(store, sub.id, Status.ACTIVE, now=datetime.now(UTC))

    assert _only(store, sub.id).attempts == 0
    assert await _push_head(dispatcher, sub.id)
    assert letters.letters == [] and len(endpoint.calls) == 2
    assert _only(store, sub.id).state == State.DELIVERED.value


async def test_the_horizon_counts_from_the_head_not_from_queueing(database_url: str) -> None:
    store, endpoint, letters = _store(database_url), Endpoint(OK), Letters()
    dispatcher = _dispatcher(store, endpoint, letters)
    sub = _webhook(store)
    _deliver(store)
    _age(store, sub.id, queued_s=2 * HORIZON_S, due_s=None)  # waited behind others, untried
    assert await _push_head(dispatcher, sub.id)
    assert letters.letters == []


async def test_the_last_try_on_the_horizon_goes_out(database_url: str) -> None:
    store, endpoint, letters = _store(database_url), Endpoint(DOWN), Letters()
    dispatcher = _dispatcher(store, endpoint, letters)
    sub = _webhook(store)
    _deliver(store)
    with store.write() as s:
        row = s.exec(select(NotificationRow)).one()
        row.attempts = 3
        s.add(row)
    # next_attempt scheduled the last try exactly on the deadline, which is now past.
    _age(store, sub.id, queued_s=HORIZON_S + 1, due_s=1)
    assert not await _push_head(dispatcher, sub.id)
    assert endpoint.calls == [sub.id]  # tried, then given up on
    assert [u.attempts for u in letters.letters] == [4]
    assert _only(store, sub.id).state == State.DEAD_LETTERED.value


async def test_a_resend_during_a_push_is_not_undone(database_url: str) -> None:
    store, endpoint, letters = _store(database_url), Endpoint(DOWN), Letters()
    dispatcher = _dispatcher(store, endpoint, letters)
    sub = _webhook(store)
    _deliver(store)
    with store.write() as s:
        row = s.exec(select(NotificationRow)).one()
        row.attempts = 3
        s.add(row)
    _age(store, sub.id, queued_s=HORIZON_S + 1, due_s=1)  # the last try: it will fail

    def resend() -> None:  # POST /subscriptions/{id}/resend while the push is out
        queue.requeue(store, sub.id, 1, 1, now=datetime.now(UTC))

    endpoint.during = resend
    assert not await _push_head(dispatcher, sub.id)
    row = _only(store, sub.id)
    assert (row.state, row.attempts) == (State.PENDING.value, 0)  # queued again, as asked


def _change_it(store: DeliveryStore, sub_id: str, change: str) -> None:
    """What another actor may do to a notification while its push is out."""
    if change == "resent":  # POST /subscriptions/{id}/resend: a fresh horizon
        queue.requeue(store, sub_id, 1, 1, now=datetime.now(UTC) + timedelta(seconds=1))
        return
    with store.write() as s:
        row = s.exec(select(NotificationRow)).one()
        if change == "dead-lettered":  # by another replica that held the lease before
            row.state = State.DEAD_LETTERED.value
        else:  # "tried": a failed try recorded by another replica
            row.attempts += 1
        s.add(row)


@pytest.mark.parametrize("change", ["resent", "dead-lettered", "tried"])
async def test_a_push_taken_is_not_recorded_over_a_change_made_meanwhile(
    database_url: str, change: str
) -> None:
    store, endpoint, letters = _store(database_url), Endpoint(OK), Letters()
    dispatcher = _dispatcher(store, endpoint, letters)
    sub = _webhook(store)
    _deliver(store)
    endpoint.during = lambda: _change_it(store, sub.id, change)
    assert await _push_head(dispatcher, sub.id)  # the endpoint took it ...
    after = _only(store, sub.id)  # ... but what changed meanwhile stands
    kept = State.DEAD_LETTERED if change == "dead-lettered" else State.PENDING
    assert after.state == kept.value and not after.acknowledged
    assert subscriptions.get(store, sub.id).acked_through == 0


async def test_only_an_endpoint_in_trouble_trips_its_breaker(database_url: str) -> None:
    store, endpoint, letters = _store(database_url), Endpoint(BAD_REQUEST, DOWN), Letters()
    dispatcher = _dispatcher(store, endpoint, letters)
    sub = _webhook(store)
    _deliver(store)
    assert not await _push_head(dispatcher, sub.id)  # 400: retried, but the endpoint is up
    assert dispatcher.breakers.open_count(0) == 0 and _only(store, sub.id).attempts == 1
    assert not await _push_head(dispatcher, sub.id)  # 503: the endpoint is in trouble
    assert dispatcher.breakers.open_count(0) == 1


async def test_one_agencys_failing_endpoint_does_not_stop_another_agencys(
    database_url: str,
) -> None:
    store, endpoint, letters = _store(database_url), Endpoint(DOWN, OK), Letters()
    dispatcher = _dispatcher(store, endpoint, letters)
    la, ed = _webhook(store, LA), _webhook(store, ED)
    _deliver(store, LA)
    _deliver(store, ED)
    assert not await _push_head(dispatcher, la.id)  # opens LA's breaker for that host
    assert await _push_head(dispatcher, ed.id)  # ED's own breaker for it is closed
    assert endpoint.calls == [la.id, ed.id]


async def test_a_window_is_pushed_in_order_until_one_is_not_taken(database_url: str) -> None:
    """Up to a window of notifications is read at once and pushed one at a time in order;
    those taken before the first failure are recorded delivered together, the failed one is
    retried later, and those after it were not sent at all."""
    store, letters = _store(database_url), Letters()
    sub = _webhook(store)
    for _ in range(5):
        _deliver(store)
    endpoint = Endpoint(OK, OK, BAD_REQUEST)
    dispatcher = _dispatcher(store, endpoint, letters)
    window = queue.window(store, sub.id, 10)
    assert [q.notification.event_number for q in window] == [1, 2, 3, 4, 5]

    assert await dispatcher._push_window(subscriptions.get(store, sub.id), window, None)
    assert len(endpoint.calls) == 3  # the fourth and fifth never went out
    with store.read() as s:
        rows = s.exec(
            select(NotificationRow)
            .where(col(NotificationRow.subscription_id) == sub.id)
            .order_by(col(NotificationRow.event_number))
        ).all()
    assert [(r.state, r.attempts) for r in rows] == [
        (State.DELIVERED.value, 0),
        (State.DELIVERED.value, 0),
        (State.PENDING.value, 1),
        (State.PENDING.value, 0),
        (State.PENDING.value, 0),
    ]
    assert subscriptions.get(store, sub.id).acked_through == 2
    assert [q.notification.event_number for q in queue.window(store, sub.id, 10)] == [3, 4, 5]


class Lanes(Endpoint):
    """Takes every push but those of ``refuse`` (event numbers), each after a moment, and
    notes how many were in flight at once."""

    def __init__(self, refuse: set[int]) -> None:
        super().__init__()
        self.refuse, self.sent, self.flying, self.most = refuse, list[int](), 0, 0

    async def post(self, url: str, body: bytes, **kw: object) -> PushOutcome:
        number = kw["event_number"]
        assert isinstance(number, int)
        self.flying += 1
        self.most = max(self.most, self.flying)
        await asyncio.sleep(0.01)
        self.flying -= 1
        self.sent.append(number)
        return BAD_REQUEST if number in self.refuse else OK


async def test_children_are_pushed_at_once_each_childs_in_order(database_url: str) -> None:
    """A window's notifications for different children go out concurrently; one child's go
    one at a time in order, and stop at the first not taken, without holding up the
    others."""
    store, letters = _store(database_url), Letters()
    sub = _webhook(store)
    children = [b"child-a", b"child-b", b"child-c"]
    for n in range(9):  # a, b, c, a, b, c, ...: numbers 1..9
        _deliver(store, key=children[n % 3])
    endpoint = Lanes(refuse={2})  # child b's first
    dispatcher = _dispatcher(store, endpoint, letters)
    window = queue.window(store, sub.id, 64)

    assert await dispatcher._push_window(subscriptions.get(store, sub.id), window, None)
    assert endpoint.most > 1  # children at once
    by_child = {c: [n for n in endpoint.sent if (n - 1) % 3 == i] for i, c in enumerate(children)}
    assert by_child == {b"child-a": [1, 4, 7], b"child-b": [2], b"child-c": [3, 6, 9]}
    pending = [q.notification.event_number for q in queue.window(store, sub.id, 64)]
    assert pending == [2, 5, 8]  # b's first to retry, and those after it, unsent


async def test_a_failing_lane_leaves_no_push_of_the_others_unrecorded(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lane that fails (here its store refuses to record a failed try) ends the window
    with its error, but only once the other children's lanes have ended too, and all they
    pushed is recorded delivered."""
    store, letters = _store(database_url), Letters()
    sub = _webhook(store)
    children = [b"child-a", b"child-b", b"child-c"]
    for n in range(9):  # a, b, c, a, b, c, ...: numbers 1..9
        _deliver(store, key=children[n % 3])
    endpoint = Lanes(refuse={2})  # child b's first, whose failure cannot be recorded

    def refusing(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("the store is down")

    monkeypatch.setattr(queue, "mark_failed", refusing)
    dispatcher = _dispatcher(store, endpoint, letters)
    window = queue.window(store, sub.id, 64)

    with pytest.raises(RuntimeError, match="the store is down"):
        await dispatcher._push_window(subscriptions.get(store, sub.id), window, None)
    assert sorted(endpoint.sent) == [1, 2, 3, 4, 6, 7, 9]
    pending = [q.notification.event_number for q in queue.window(store, sub.id, 64)]
    assert pending == [2, 5, 8]  # every push taken was recorded, none left pending


def _window_steps(store: DeliveryStore, sub_id: str) -> tuple[int, int]:
    """(notifications in the window, SQLite virtual-machine steps its read took, in
    hundreds): the work, counted, not timed."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    def on_connect(dbapi: sqlite3.Connection, _: object) -> None:
        dbapi.set_progress_handler(count, 100)

    store.engine.dispose()
    event.listen(store.engine, "connect", on_connect)
    try:
        found = len(queue.window(store, sub_id, 64))
    finally:
        event.remove(store.engine, "connect", on_connect)
        store.engine.dispose()
    return found, steps


def test_a_window_is_read_without_stepping_past_what_was_delivered_before(tmp_path: Path) -> None:
    """A long-lived subscription's worker must not read its whole history for each window:
    with 3,000 delivered before, reading 64 pending takes about what it takes alone."""
    fresh, worn = _store(f"sqlite:///{tmp_path}/fresh.db"), _store(f"sqlite:///{tmp_path}/worn.db")
    subs = {fresh: _webhook(fresh).id, worn: _webhook(worn).id}
    worn.ingest([_incoming() for _ in range(3000)], {}, now=datetime.now(UTC))
    with worn.write() as s:
        s.execute(update(NotificationRow).values(state=State.DELIVERED.value))
    for store in (fresh, worn):
        store.ingest([_incoming() for _ in range(64)], {}, now=datetime.now(UTC))
    alone, behind = _window_steps(fresh, subs[fresh]), _window_steps(worn, subs[worn])
    assert alone[0] == behind[0] == 64
    assert behind[1] < 2 * alone[1], (alone, behind)
