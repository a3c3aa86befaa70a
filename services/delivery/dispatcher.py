"""Webhook push: one worker per active webhook subscription, each sending its queue in
event-number order, one child's notifications one at a time (so they arrive in the order
they happened) and up to ``LANES`` children's at once. A window of up to ``WINDOW`` is read
at once, and those the endpoint took are recorded together. A failed push is retried with
backoff behind a circuit breaker per endpoint, and dead-lettered if still undelivered at the
retry horizon; heartbeats are sent when there is nothing to say.

Delivery is at least once: a notification whose 2xx was lost is sent again with the same
``Idempotency-Key``, and the receiver drops the repeat.

Replicas sharing the store push each subscription from one replica at a time: its worker
pushes only while it holds the subscription's lease (``leases``), so order holds and each
notification is pushed once; a replica that stops or hangs is taken over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy.exc import SQLAlchemyError

from services.backbone.lease import Lease
from services.backbone.metering import Metrics
from services.backbone.records import ReadRecord
from services.delivery import queue, subscriptions, webhook_secrets
from services.delivery.backoff import RetryPolicy, give_up_untried, next_attempt
from services.delivery.breaker import BreakerBoard, BreakerState, CircuitBreaker
from services.delivery.deadletter import Undeliverable
from services.delivery.endpoints import breaker_key
from services.delivery.errors import SecretUnreadable, SubscriptionNotFound
from services.delivery.kafka_edge import DeadLetters
from services.delivery.model import Channel, Content, NotificationType, Status
from services.delivery.notifications import Entry, notification
from services.delivery.observe import DeliveryTelemetry
from services.delivery.signing import idempotency_key
from services.delivery.store import DeliveryStore, delivered, headers_of, utc
from services.delivery.tables import SubscriptionRow
from services.delivery.webhook import PushOutcome, WebhookSender

log = logging.getLogger(__name__)
PUSH_MARGIN_S = 5.0
WINDOW = 64  # notifications read, pushed in order and recorded together
# Children whose notifications are pushed to one endpoint at once. More lanes help an
# endpoint slow to answer, and cost CPU: when pushes went through one httpx pool, with 4
# subscriptions and a receiver answering in 10 ms, 1 lane gave 281 deliveries/s, 4 gave 455
# and 8 gave 382; answering at once, 605, 496 and 459 (bench delivery).
LANES = 4
MIN_WAIT_S = 0.02  # never spin: even a wait that is already over yields this long


def _lanes(window: list[queue.Queued]) -> list[list[queue.Queued]]:
    """The window's notifications by child, each child's in event-number order. Without a
    record key (an anonymised recipient gets no key for the child) they share one lane:
    their order is kept as the queue's."""
    lanes: dict[bytes | None, list[queue.Queued]] = {}
    for queued in window:
        lanes.setdefault(queued.delivery.record_key, []).append(queued)
    return list(lanes.values())


class Changes:
    """Wakes every waiting worker when something may have changed (new events, a status
    change, a resend). Must be used from the event loop's thread."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, at_most_s: float) -> None:
        event = self._event
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(MIN_WAIT_S, at_most_s)):
                await event.wait()


@dataclass
class Dispatcher:
    store: DeliveryStore
    sender: WebhookSender
    dead_letters: DeadLetters
    policy: RetryPolicy
    breakers: BreakerBoard
    changes: Changes
    base_url: str = ""
    poll_s: float = 1.0
    rand: Callable[[], float] = random.random
    telemetry: DeliveryTelemetry | None = None
    leases: Callable[[str], Lease] | None = None  # by name; None: this replica is alone
    _workers: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _pushing: set[str] = field(default_factory=set)  # subscriptions with a push in flight
    _stopping: bool = False

    def __post_init__(self) -> None:
        if self.telemetry is None:
            self.telemetry = DeliveryTelemetry(Metrics("infoshare-delivery"), self.breakers, None)

    async def run(self, stop: asyncio.Event) -> None:
        """Keep one worker per active webhook subscription until ``stop`` is set."""
        try:
            while not stop.is_set():
                for sub_id in await asyncio.to_thread(self.store.active_webhooks):
                    worker = self._workers.get(sub_id)
                    if worker is None or worker.done():
                        self._workers[sub_id] = asyncio.create_task(
                            self._guarded(sub_id), name=f"webhook {sub_id}"
                        )
                await self.changes.wait(self.poll_s)
        finally:
            await self._stop_workers()

    async def _stop_workers(self) -> None:
        """Stop every worker; one with a push in flight first finishes it and records how
        it went (for as long as a push may take), so that a clean stop never leaves a push
        the endpoint took unrecorded, for the next holder of its lease to push again."""
        self._stopping = True
        busy = [w for s, w in self._workers.items() if s in self._pushing]
        for sub_id, worker in self._workers.items():
            if sub_id not in self._pushing:
                worker.cancel()
        if busy:
            await asyncio.wait(busy, timeout=self.sender.timeout_s + PUSH_MARGIN_S)
        for worker in busy:
            worker.cancel()
        await asyncio.gather(*self._workers.values(), return_exceptions=True)

    async def _guarded(self, sub_id: str) -> None:
        try:
            await self._work(sub_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the supervisor starts it again on its next round
            log.error("webhook worker %s failed (%s)", sub_id, type(exc).__name__)
            await asyncio.sleep(self.poll_s)

    async def _work(self, sub_id: str) -> None:
        lease = self.leases(f"webhook:{sub_id}") if self.leases is not None else None
        try:
            await self._work_held(sub_id, lease)
        finally:
            if lease is not None and lease.epoch is not None:
                with contextlib.suppress(SQLAlchemyError):
                    await asyncio.to_thread(lease.release)

    async def _work_held(self, sub_id: str, lease: Lease | None) -> None:
        last_sent = time.monotonic()
        while not self._stopping:
            try:
                sub = await asyncio.to_thread(subscriptions.get, self.store, sub_id)
            except SubscriptionNotFound:
                return
            if sub.status != Status.ACTIVE.value or sub.channel != Channel.WEBHOOK.value:
                return
            if lease is not None and not await self._still_held(lease):
                await self.changes.wait(self.poll_s)  # another replica pushes it
                continue
            assert sub.endpoint is not None
            window = await asyncio.to_thread(queue.window, self.store, sub_id, WINDOW)
            if not window:
                last_sent = await self._idle(sub, last_sent)
                continue
            self._pushing.add(sub_id)
            try:
                if await self._push_window(sub, window, lease):
                    last_sent = time.monotonic()
            finally:
                self._pushing.discard(sub_id)

    async def _still_held(self, lease: Lease) -> bool:
        """Whether the lease is ours for as long as a push may take: from memory when it
        needs no renewal (before every push), from the database when it does."""
        longest = self._longest
        return lease.surely_held(longest) or await asyncio.to_thread(lease.held, longest)

    @property
    def _longest(self) -> timedelta:
        """A lease is held for longer than one push can take, so no standby starts the
        subscription meanwhile."""
        return timedelta(seconds=self.sender.timeout_s + PUSH_MARGIN_S)

    async def _push_window(
        self, sub: SubscriptionRow, window: list[queue.Queued], lease: Lease | None
    ) -> bool:
        """Push the window: each child's notifications (by the record key, the recipient's
        own key for the child) one at a time in order, until one is not taken (it was
        retried, dead-lettered or left waiting, and recorded so), up to ``LANES`` children
        at once; then record those taken in one write. True if any was taken. The secret is
        opened once per window, and a status change made meanwhile is seen at the next."""
        taken: list[queue.Queued] = []
        secret = await self._secret(sub)
        slots = asyncio.Semaphore(LANES)

        async def lane(heads: list[queue.Queued]) -> None:
            for head in heads:
                if self._stopping:
                    return
                async with slots:
                    if lease is not None and not await self._still_held(lease):
                        return
                    if not await self._push(sub, head, secret=secret):
                        return
                taken.append(head)

        try:
            # Every lane to its end, even if one fails: a failing lane (its store or the
            # dead-letter topic down) must not leave the others pushing on unrecorded.
            ended = await asyncio.gather(
                *(lane(heads) for heads in _lanes(window)), return_exceptions=True
            )
        finally:
            if taken:  # also when stopping: what an endpoint took is recorded
                if self.telemetry is not None:
                    self.telemetry.pushed_all(sub.agency, len(taken))
                await asyncio.to_thread(
                    queue.mark_delivered_all,
                    self.store,
                    [q.notification for q in taken],
                    now=datetime.now(UTC),
                )
        for outcome in ended:
            if isinstance(outcome, BaseException):
                raise outcome
        return bool(taken)

    async def _idle(self, sub: SubscriptionRow, last_sent: float) -> float:
        """Nothing queued: send a heartbeat if one is due, else wait for news."""
        period = sub.heartbeat_period_s
        now = time.monotonic()
        if period and now - last_sent >= period:
            assert sub.endpoint is not None
            breaker = self.breakers.get(breaker_key(sub.agency, sub.endpoint))
            if breaker.allow(now):
                body = notification(
                    subscription_id=sub.id,
                    kind=NotificationType.HEARTBEAT,
                    status=sub.status,
                    events_since_start=sub.events_since_start,
                )
                outcome = await self._post(
                    sub,
                    orjson.dumps(body),
                    idempotency_key=f"{sub.id}:heartbeat:{int(time.time())}",
                    event_number=None,
                )
                self._record(breaker, outcome)
                if outcome.gone:
                    await self._turn_off(sub.id)
            return time.monotonic()  # a failed heartbeat is not retried before the next
        await self.changes.wait(
            min(self.poll_s, period - (now - last_sent)) if period else self.poll_s
        )
        return last_sent

    async def _push(self, sub: SubscriptionRow, head: queue.Queued, *, secret: str | None) -> bool:
        """Try the head of the queue once if it is due and its endpoint's breaker allows;
        True if the endpoint took it (the caller records it delivered).

        The retry horizon counts from when a notification became the head (a fresh one, a
        resent one and every one queued while its subscription was off start afresh), so
        each gets at least one try however long it waited behind others."""
        assert sub.endpoint is not None
        n = head.notification
        now = datetime.now(UTC)
        fresh = n.attempts == 0 and n.next_attempt_at is None
        started = now if fresh else utc(n.queued_at)
        due = None if n.next_attempt_at is None else utc(n.next_attempt_at)
        if not fresh and give_up_untried(
            self.policy, started=started, next_attempt_at=due, now=now
        ):
            await self._dead_letter(sub, head, attempts=n.attempts, error=n.last_error)
            return False
        deadline = started.timestamp() + self.policy.horizon_s
        if due is not None and due > now:
            await self.changes.wait(min(due.timestamp(), deadline) - now.timestamp())
            return False
        breaker = self.breakers.get(breaker_key(sub.agency, sub.endpoint))
        if not breaker.allow(time.monotonic()):
            if fresh:  # it is the head now, waiting: its horizon starts
                await asyncio.to_thread(queue.start, self.store, n, now=now)
                return False
            if now.timestamp() >= deadline:  # its last try cannot go out
                await self._dead_letter(sub, head, attempts=n.attempts, error=n.last_error)
                return False
            reopen = (breaker.retry_at() or time.monotonic()) - time.monotonic()
            await self.changes.wait(min(reopen, deadline - now.timestamp()))
            return False
        body = notification(
            subscription_id=sub.id,
            kind=NotificationType.EVENT,
            status=sub.status,
            events_since_start=sub.events_since_start,
            entries=[Entry(n.event_number, utc(n.created_at), delivered(head.delivery))],
            content=Content(sub.content),
            agency=sub.agency,
            base_url=self.base_url,
        )
        seen = self.telemetry
        assert seen is not None
        with seen.webhook_post(
            recipient=sub.agency,
            subscription=sub.id,
            url=sub.endpoint,
            attempt=n.attempts + 1,
            headers=headers_of(head.delivery),
        ) as span:
            outcome = await self._post(
                sub,
                orjson.dumps(body),
                idempotency_key=idempotency_key(sub.id, n.event_number),
                event_number=n.event_number,
                secret=secret,
            )
            seen.pushed(span, sub.agency, outcome)
        now = datetime.now(UTC)
        self._record(breaker, outcome)
        if outcome.ok:
            return True
        if outcome.gone:
            await self._turn_off(sub.id)
            return False
        attempts = n.attempts + 1
        error = outcome.error or "failed"
        retry_at = next_attempt(
            self.policy, attempts=attempts, queued_at=started, now=now, rand=self.rand
        )
        if retry_at is None:
            await self._dead_letter(sub, head, attempts=attempts, error=error)
            return False
        seen.retrying(sub.agency)
        await asyncio.to_thread(
            queue.mark_failed,
            self.store,
            n,
            attempts=attempts,
            started=started,
            next_attempt_at=retry_at,
            error=error,
        )
        return False

    async def _secret(self, sub: SubscriptionRow) -> str | None:
        """The subscription's signing secret, opened; None (logged) if it cannot be read."""
        try:
            return await asyncio.to_thread(webhook_secrets.signing_secret, self.store, sub.id)
        except SecretUnreadable as exc:
            log.error("subscription %s: its webhook secret cannot be read (%s)", sub.id, exc)
            return None

    async def _post(
        self,
        sub: SubscriptionRow,
        body: bytes,
        *,
        idempotency_key: str,
        event_number: int | None,
        secret: str | None = None,
    ) -> PushOutcome:
        """Sign with the subscription's secret (``secret``, or opened for this one push)
        and send."""
        assert sub.endpoint is not None
        secret = secret if secret is not None else await self._secret(sub)
        if secret is None:
            return PushOutcome(ok=False, error="the webhook secret cannot be read")
        return await self.sender.post(
            sub.endpoint,
            body,
            secret=secret,
            idempotency_key=idempotency_key,
            subscription_id=sub.id,
            event_number=event_number,
            recipient=sub.agency,
        )

    def _record(self, breaker: CircuitBreaker, outcome: PushOutcome) -> None:
        """Only an endpoint in trouble counts against its breaker; any other answer shows
        it is up. A breaker that closes wakes the workers waiting on it."""
        if outcome.endpoint_down:
            breaker.record_failure(time.monotonic())
            return
        was_closed = breaker.state(time.monotonic()) is BreakerState.CLOSED
        breaker.record_success()
        if not was_closed:
            self.changes.notify()

    async def _turn_off(self, sub_id: str) -> None:
        log.warning("the webhook of subscription %s answered 410 Gone: turned off", sub_id)
        await asyncio.to_thread(
            subscriptions.set_status,
            self.store,
            sub_id,
            Status.OFF,
            now=datetime.now(UTC),
            error="the endpoint answered 410 Gone: subscription turned off",
        )

    async def _dead_letter(
        self, sub: SubscriptionRow, head: queue.Queued, *, attempts: int, error: str | None
    ) -> None:
        d = head.delivery
        letter = Undeliverable(
            subscription_id=sub.id,
            event_number=head.notification.event_number,
            agency=sub.agency,
            origin=ReadRecord(
                d.kafka_topic,
                d.kafka_partition,
                d.kafka_offset,
                d.record_key,
                d.record_value,
                headers_of(d),
            ),
            event=delivered(d),
            attempts=attempts,
            last_error=error,
            horizon_s=self.policy.horizon_s,
        )
        await self.dead_letters.undeliverable(letter)
        if self.telemetry is not None:
            self.telemetry.dead_lettered(sub.agency)
        marked = await asyncio.to_thread(
            queue.mark_dead_lettered,
            self.store,
            head.notification,
            attempts=attempts,
            error=error,
            now=datetime.now(UTC),
        )
        if not marked:  # resent or switched back on meanwhile: it stays queued
            log.warning(
                "subscription %s event number %d changed while being dead-lettered: kept queued",
                sub.id,
                head.notification.event_number,
            )
            return
        # An alert: ids only. The event id is the recipient's own, linking to nobody.
        log.error(
            "ALERT undeliverable: subscription %s (recipient %s) event number %d, delivery %s, "
            "dead-lettered to %s after %d attempts (%s)",
            sub.id,
            sub.agency,
            head.notification.event_number,
            d.event_id,
            self.dead_letters.dlq_topic,
            attempts,
            error or "retry horizon passed",
        )
