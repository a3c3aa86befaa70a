"""A test run's SIGTERM, handled as a foreground stack's (deploy/devstack/stopping.py): the
Kafka broker, PostgreSQL, the trace backends, the dev identity provider and a test's own
stack run in sessions of their own, so a SIGTERM that ended the run at once (a
supervisor's, ``timeout``'s) left them running. Here it interrupts the run as Ctrl-C does,
which tears the fixtures down:

- one that comes while a test's fixtures are set up or torn down interrupts as that ends,
  so a server being started is known to its fixture's teardown, and one being stopped is
  stopped;
- none after it, nor any once the last test's teardown has begun, cuts the teardown
  short, unless it comes a minute after the first one ignored (a teardown that hangs can
  still be ended);
- the controller of a parallel run passes it on to its workers, so that each interrupts
  its test and tears its own fixtures down at once: xdist ends a worker 10 s after the
  controller stops (execnet interrupts it after 5), and a worker's stack or broker takes
  seconds to stop.

Ctrl-C is left to pytest (and to asyncio, which cancels a test's task on it): from a
terminal it reaches the workers too. Registered by conftest.py in every process of a run."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Generator
from typing import Any

import pytest

from deploy.devstack.stopping import stop_signals

GRACE_S = 60.0


def pytest_configure(config: pytest.Config) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers (pytest run inside a thread)
    config.pluginmanager.register(_RunStopping(), "infoshare-run-stopping")


class _RunStopping:
    def __init__(self) -> None:
        self._handlers = contextlib.ExitStack()
        self.stopping = self._handlers.enter_context(
            stop_signals({signal.SIGTERM}, grace_s=GRACE_S)
        )
        self.workers: list[Any] = []  # a parallel run's controller: its workers' gateways

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self) -> Generator[None, None, None]:
        with self.stopping.held():
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, nextitem: pytest.Item | None) -> Generator[None, None, None]:
        if nextitem is None:  # the last test: every fixture, the session's too, goes after it
            self.stopping.begun = True
        with self.stopping.held():
            return (yield)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_newgateway(self, gateway: Any) -> None:
        self.workers.append(gateway)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        if self.stopping.signalled:  # before xdist stops the workers: each tears down its own
            for gateway in self.workers:
                process = getattr(getattr(gateway, "_io", None), "popen", None)
                if process is not None and process.poll() is None:
                    process.send_signal(signal.SIGTERM)
        self.stopping.begun = True  # what is left (a run ended early) is torn down after it

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self) -> None:
        self._handlers.close()  # after the shared servers are stopped (conftest's unconfigure)
