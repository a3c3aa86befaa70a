"""A test run's stop signals, as a foreground stack's (deploy/devstack/stopping.py): the
Kafka broker, PostgreSQL, the trace backends, the dev identity provider and a test's own
stack run in sessions of their own, so a SIGTERM that ended the run at once (a supervisor's,
``timeout``'s) left them running. Here the first Ctrl-C or SIGTERM interrupts the run as
Ctrl-C does, which tears the fixtures down; none after it, nor any once the run's teardown
has begun, cuts that short. Registered by conftest.py in every process of a run."""

from __future__ import annotations

import contextlib
import threading

import pytest

from deploy.devstack.stopping import Stopping, stop_signals

_HELD = pytest.StashKey[tuple[contextlib.ExitStack, Stopping]]()


def pytest_configure(config: pytest.Config) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers (pytest run inside a thread)
    held = contextlib.ExitStack()
    config.stash[_HELD] = held, held.enter_context(stop_signals())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if nextitem is None:  # the last test: every fixture, the session's too, goes after it
        _begun(item.config)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    _begun(session.config)  # what is left (a run that ended early) is torn down after it


def _begun(config: pytest.Config) -> None:
    held = config.stash.get(_HELD, None)
    if held is not None:
        held[1].begun = True


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    held = config.stash.get(_HELD, None)
    if held is not None:
        held[0].close()  # after the shared servers are stopped (conftest's unconfigure)
