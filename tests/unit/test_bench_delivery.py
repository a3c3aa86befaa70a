"""The delivery benchmark's receiver counts only correctly signed notifications, and the
bare baseline's bodies, signed again, pass the same check."""

from __future__ import annotations

import time

import orjson

from deploy.bench.delivery_drive import sign_again
from deploy.bench.delivery_receiver import Counts
from deploy.bench.delivery_report import quantile_ms
from services.delivery.signing import new_secret, signature_headers

SUB = "sub-1"


def _note(number: int) -> bytes:
    entry = {"event_number": number, "focus": {"id": f"event-{number}"}}
    return orjson.dumps({"subscription": SUB, "notification_events": [entry]})


def test_the_receiver_counts_a_signed_notification_and_refuses_any_other() -> None:
    secret, other = new_secret(), new_secret()
    counts = Counts()
    counts.control(b"POST", "/control/secrets", orjson.dumps({"s0": secret}))
    body = _note(1)
    signed = signature_headers(secret, body, msg_id=f"{SUB}:1", timestamp=int(time.time()))
    wrong = signature_headers(other, body, msg_id=f"{SUB}:1", timestamp=int(time.time()))

    assert counts.answer(b"POST", "/hook/s0", signed, body) == (200, b"")
    assert counts.answer(b"POST", "/hook/s0", wrong, body)[0] == 401
    assert counts.answer(b"POST", "/hook/s0", signed, body + b" ")[0] == 401  # body changed
    assert counts.answer(b"POST", "/hook/s1", signed, body)[0] == 401  # no secret for it
    assert [event_id for _, event_id in counts.arrivals] == ["event-1"]
    assert counts.refused == 3


def test_the_bare_bodies_signed_again_pass_the_receivers_check_in_order() -> None:
    secret = new_secret()
    counts = Counts()
    counts.control(b"POST", "/control/secrets", orjson.dumps({"s0": secret}))
    bodies = [("s0", _note(n).decode()) for n in (1, 2, 3)]

    for body, headers in sign_again(bodies, {"s0": secret})["s0"]:
        lowered = {k.lower(): v for k, v in headers.items()}
        assert counts.answer(b"POST", "/hook/s0", lowered, body)[0] == 200
    assert [event_id for _, event_id in counts.arrivals] == ["event-1", "event-2", "event-3"]


def test_quantiles_are_nearest_rank() -> None:
    seconds = [i / 1000 for i in range(1, 101)]
    assert quantile_ms(seconds, 0.5) == 50.0
    assert quantile_ms(seconds, 0.99) == 99.0
