"""The console's sign-ins and sessions: single use, bound to the browser that began them,
and ended by idleness, age or sign-out."""

from __future__ import annotations

from services.audit.console.sessions import SIGN_IN_S, Sessions
from services.backbone.people import Person, PersonRole
from tests.clock import Clock

OFFICER = Person("https://idp", "sam", "Sam", frozenset({PersonRole.IG_OFFICER}))


def test_a_sign_in_finishes_once_with_its_own_state() -> None:
    sessions = Sessions(Clock(1000.0))
    key, started = sessions.begin_sign_in()
    assert sessions.finish_sign_in(key, "another state") is None
    key, started = sessions.begin_sign_in()
    assert sessions.finish_sign_in(key, started.state) == started
    assert sessions.finish_sign_in(key, started.state) is None  # used


def test_a_sign_in_from_another_browser_or_too_late_is_refused() -> None:
    clock = Clock(1000.0)
    sessions = Sessions(clock)
    _, started = sessions.begin_sign_in()
    assert sessions.finish_sign_in(None, started.state) is None
    assert sessions.finish_sign_in("not-this-browser", started.state) is None
    key, started = sessions.begin_sign_in()
    clock.now += SIGN_IN_S + 1
    assert sessions.finish_sign_in(key, started.state) is None


def test_every_secret_is_fresh() -> None:
    sessions = Sessions(Clock(1000.0))
    seen = set()
    for _ in range(50):
        key, s = sessions.begin_sign_in()
        seen |= {key, s.state, s.nonce, s.verifier, sessions.open(OFFICER)}
    assert len(seen) == 250


def test_a_session_ends_when_idle_old_or_closed() -> None:
    clock = Clock(1000.0)
    sessions = Sessions(clock, idle_s=100, max_s=250)
    key = sessions.open(OFFICER)
    clock.now += 99
    session = sessions.get(key)
    assert session is not None and session.person == OFFICER
    clock.now += 99  # busy: idle time reset by the request before
    assert sessions.get(key) is not None
    clock.now += 60  # 258 s after sign-in
    assert sessions.get(key) is None
    key = sessions.open(OFFICER)
    clock.now += 101
    assert sessions.get(key) is None
    key = sessions.open(OFFICER)
    sessions.close(key)
    assert sessions.get(key) is None
    assert sessions.get(None) is None
