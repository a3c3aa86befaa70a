"""Kafka's jars fetched into the cache once, complete from the moment they are there, and
never taken away from a broker starting on them: two fetches at once (two test workers, a
worker and `infoshare kafka fetch`) make one download, and both use its jars."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from deploy.devstack.broker import fetch
from deploy.devstack.broker.errors import BrokerError

JARS = ("kafka_2.13.jar", "kafka-clients.jar")
WAIT_S = 30.0


class FakeMaven:
    """Stands in for Maven: writes the jars where it is told and counts its calls. The first
    call, once started, waits for ``go``; a later one says so at once (``contending``)."""

    def __init__(self) -> None:
        self.calls = 0
        self.started = threading.Event()
        self.go = threading.Event()
        self.contending = threading.Event()
        self._count = threading.Lock()

    def __call__(self, into: Path, version: str, *, quiet: bool) -> None:
        with self._count:
            self.calls += 1
            first = self.calls == 1
        if first:
            self.started.set()
            assert self.go.wait(WAIT_S), "the test never let the first fetch go on"
        else:
            self.contending.set()
        into.mkdir(parents=True)
        for name in JARS:
            (into / name).write_bytes(f"{name} {version}".encode())


class _Said(logging.Handler):
    """Sets ``event`` when a record saying ``text`` is logged."""

    def __init__(self, text: str, event: threading.Event) -> None:
        super().__init__()
        self.text, self.event = text, event

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


@pytest.fixture
def maven(monkeypatch: pytest.MonkeyPatch) -> FakeMaven:
    fake = FakeMaven()
    monkeypatch.setattr(fetch, "_copy_dependencies", fake)
    return fake


def _target(cache: Path) -> Path:
    return fetch.libs_dir(cache, fetch.pinned_version())


def _fetched(cache: Path) -> tuple[Path, int]:
    """What a broker starting now would be given: the directory, and its jar's inode."""
    libs = fetch.ensure_jars(cache)
    return libs, (libs / JARS[0]).stat().st_ino


def test_two_fetches_at_once_download_once_and_neither_loses_its_jars(
    tmp_path: Path, maven: FakeMaven, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=fetch.__name__)
    # The second fetch is seen either waiting for the first or fetching beside it.
    said = _Said("waiting for another process fetching Kafka", maven.contending)
    fetch.log.addHandler(said)
    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(_fetched, tmp_path)
            assert maven.started.wait(WAIT_S)  # the first is downloading
            second = pool.submit(_fetched, tmp_path)
            assert maven.contending.wait(WAIT_S)
            maven.go.set()
            got = [first.result(WAIT_S), second.result(WAIT_S)]
    finally:
        fetch.log.removeHandler(said)
    target = _target(tmp_path)
    now = (target / JARS[0]).stat().st_ino
    # Both were given the same jars, still in place: none was deleted or replaced under them.
    assert got == [(target, now), (target, now)]
    assert maven.calls == 1
    assert sorted(p.name for p in target.iterdir()) == sorted([*JARS, ".complete"])


def test_an_incomplete_copy_and_a_killed_fetch_are_replaced_by_a_complete_one(
    tmp_path: Path, maven: FakeMaven
) -> None:
    maven.go.set()
    target = _target(tmp_path)
    target.mkdir(parents=True)
    (target / JARS[0]).write_bytes(b"half")  # no marker: never complete, never used
    (target.parent / ".libs-killed" / "libs").mkdir(parents=True)  # a fetch that was killed
    assert fetch.ensure_jars(tmp_path) == target
    assert (target / JARS[0]).read_bytes() != b"half"
    assert sorted(p.name for p in target.iterdir()) == sorted([*JARS, ".complete"])
    assert sorted(p.name for p in target.parent.iterdir()) == [".fetch.lock", "libs"]
    assert fetch.ensure_jars(tmp_path) == target
    assert maven.calls == 1  # complete: used as it is from then on


def test_a_failed_fetch_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(into: Path, version: str, *, quiet: bool) -> None:
        into.mkdir(parents=True)
        (into / JARS[0]).write_bytes(b"half")
        raise BrokerError("Maven could not fetch Kafka")

    monkeypatch.setattr(fetch, "_copy_dependencies", unreachable)
    with pytest.raises(BrokerError, match="could not fetch"):
        fetch.ensure_jars(tmp_path)
    assert [p.name for p in _target(tmp_path).parent.iterdir()] == [".fetch.lock"]
