"""Large uploads parsed in a worker process (services/backbone/offload.py): a small one is
parsed where it arrives, a large one in a worker; what the worker raises is raised in the
service as it was made; a worker that dies costs the upload nothing."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import pickle
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import orjson
import pytest

from services.backbone import offload as offload_module
from services.backbone.errors import InputRejected, InputTooLarge
from services.backbone.logs import configure_logging
from services.backbone.offload import LARGE_BYTES, Offload, large


def test_an_input_rejected_comes_back_from_pickling_whole() -> None:
    for made in (
        InputRejected(["body", "entry", 3], "an entry is not valid", "fhir.invalid"),
        InputTooLarge(["body"], "the body is over 5 MB", "size"),
    ):
        back = pickle.loads(pickle.dumps(made))  # noqa: S301 (our own bytes, as a worker's)
        assert type(back) is type(made)
        assert (back.loc, back.msg, back.rule, str(back)) == (
            made.loc,
            made.msg,
            made.rule,
            str(made),
        )


def test_an_input_is_large_from_64_kib() -> None:
    assert not large(b"x" * (LARGE_BYTES - 1))
    assert large(b"x" * LARGE_BYTES)


def _pid() -> int:
    return os.getpid()


def _settings() -> list[str]:
    return sorted(n for n in os.environ if n.upper().startswith("INFOSHARE_"))


def _collector() -> tuple[bool, bool]:
    """In a worker: whether the collector is on during a parse, and whether what the worker
    had made before it is frozen."""
    return gc.isenabled(), gc.get_freeze_count() > 0


def _refuse_holding_much() -> None:
    """Refused while handling an error that holds what the parse made, as fhir.resources'
    ValidationError does."""
    made: list[list[int]] = [[] for _ in range(HELD)]
    try:
        raise ValueError(made)
    except ValueError:
        raise InputRejected(["body", "entry", 4400], "entry refused", "fhir.invalid") from None


def _objects_alive() -> int:
    gc.collect()
    return len(gc.get_objects())


HELD = 200_000


def _refuse(row: int) -> None:
    raise InputRejected(["body", row], "row refused", "csv.row")


def _pid_once_marked(mark: str) -> int:
    """The worker's pid, after a while: a mark says when it has begun."""
    Path(mark).write_text(str(os.getpid()))
    time.sleep(1.0)
    return os.getpid()


def _die_unless_in(service: int) -> int:
    if os.getpid() != service:
        os._exit(3)  # as a worker killed for its memory would
    return os.getpid()


async def test_a_large_input_is_parsed_in_a_worker_and_a_small_one_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INFOSHARE_KEYRING_YAML", "the service's keys")
    offload = Offload(1)
    here = os.getpid()
    try:
        assert await offload.run(_settings, large=False) != []
        assert await offload.run(_settings, large=True) == []
        assert await offload.run(_pid, large=False) == here
        assert await offload.run(_pid, large=False, in_thread=True) == here
        assert offload.sent == 1
        assert await offload.run(_pid, large=True) != here
        assert offload.sent == 2
        with pytest.raises(InputRejected) as refused:
            await offload.run(_refuse, 7, large=True)
        assert (refused.value.loc, refused.value.msg, refused.value.rule) == (
            ["body", 7],
            "row refused",
            "csv.row",
        )
        # An input whose every worker dies is parsed here; the next has a new worker.
        assert await offload.run(_die_unless_in, here, large=True) == here
        assert offload.died == 1
        assert await offload.run(_pid, large=True) != here
        assert (offload.sent, offload.died) == (5, 1)
    finally:
        offload.close()


async def test_a_parse_whose_worker_is_killed_is_given_to_a_new_worker(tmp_path: Path) -> None:
    offload = Offload(1)
    mark = tmp_path / "began"
    try:
        parsing = asyncio.create_task(offload.run(_pid_once_marked, str(mark), large=True))
        deadline = time.monotonic() + 30
        while not mark.exists() or not mark.read_text():
            assert time.monotonic() < deadline and not parsing.done()
            await asyncio.sleep(0.01)
        first = int(mark.read_text())
        mark.unlink()
        os.kill(first, signal.SIGKILL)
        second = await parsing
        assert second not in (first, os.getpid())
        assert (offload.sent, offload.died) == (1, 0)
    finally:
        offload.close()


async def test_a_worker_parses_with_the_collector_off_and_its_start_frozen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    offload = Offload(1)
    try:
        assert await offload.run(_collector, large=True) == (False, True)
        assert await offload.run(_collector, large=False) == (True, gc.get_freeze_count() > 0)
    finally:
        offload.close()
    # After a parse, even one that fails, the collector is on again (here, in this process:
    # marked as frozen already, so that nothing of the test's is frozen).
    monkeypatch.setattr(offload_module, "_frozen", True)
    with pytest.raises(InputRejected):
        offload_module._in_worker(_refuse, 3)
    assert gc.isenabled()


async def test_a_refused_parse_leaves_nothing_of_itself_in_the_worker() -> None:
    offload = Offload(1)
    try:
        before = await offload.run(_objects_alive, large=True)
        with pytest.raises(InputRejected) as refused:
            await offload.run(_refuse_holding_much, large=True)
        assert refused.value.loc == ["body", "entry", 4400]
        after = await offload.run(_objects_alive, large=True)
        assert after - before < HELD // 10
    finally:
        offload.close()


async def test_without_workers_every_input_is_parsed_here() -> None:
    offload = Offload(0)
    assert await offload.run(_pid, large=True) == os.getpid()
    assert offload.sent == 0
    offload.close()


SERVICE = """
import asyncio, os, time
from services.backbone.offload import Offload

def pid():
    return os.getpid()

async def main():
    offload = Offload(1)  # kept: a pool collected would stop its worker itself
    print(await offload.run(pid, large=True), flush=True)
    time.sleep(60)

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_a_worker_exits_when_its_service_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    root = Path(__file__).resolve().parents[2]
    service = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert service.stdout is not None
        worker = int(service.stdout.readline())
        service.kill()  # SIGKILL: nothing of the service runs after it
        service.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(worker):
            assert time.monotonic() < deadline, "the worker outlived its service"
            time.sleep(0.02)
    finally:
        service.kill()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's reaping is left


def _log_and_warn() -> int:
    logging.getLogger("infoshare.test").warning("about 943 476 5919, in the worker")
    warnings.warn("a library's warning naming 9434765919", UserWarning, stacklevel=1)
    return os.getpid()


async def test_a_worker_logs_as_its_service_does_redacted(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """What a worker logs, and a library's warning in it, come out as its service's JSON
    lines, redacted, not raw on the stderr the two share."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    with warnings.catch_warnings():  # the warnings' display, which it sets, put back after
        configure_logging("infoshare-offload-test")
        offload = Offload(1)
        try:
            assert await offload.run(_log_and_warn, large=True) != os.getpid()
        finally:
            offload.close()
            root.handlers[:], level = saved
            root.setLevel(level)
    err = capfd.readouterr().err
    lines = [orjson.loads(line) for line in err.splitlines() if "infoshare-offload-test" in line]
    assert {line["logger"] for line in lines} >= {"infoshare.test", "py.warnings"}
    assert "9434765919" not in err and "943 476 5919" not in err
