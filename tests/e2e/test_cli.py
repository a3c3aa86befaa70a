"""The README's commands as a user types them: `infoshare demo`, `infoshare up` and
`infoshare kafka start|status|stop`, each run as its own process."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx
import pytest

from deploy.devstack.broker.node import port_open
from deploy.devstack.paths import default_cache_dir
from deploy.devstack.ports import free_listen_port
from deploy.devstack.postgres import PostgresNode
from services.backbone.kafka_access import KafkaAccess
from tests.e2e.leftovers import alive, cmdline, descendants

pytestmark = pytest.mark.e2e
INFOSHARE = [sys.executable, "-m", "deploy.cli.main"]
LEFTOVERS = [sys.executable, "-m", "tests.e2e.leftovers"]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"INFOSHARE_CACHE_DIR": str(default_cache_dir()), "COLUMNS": "160", **extra})
    return env


class Lines:
    """A child's output, read on a thread, so a test waits on a line with a timeout."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r}; output so far:\n" + "".join(self.seen))

    def rest(self, timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            line = self._queue.get(timeout=left)
            if line is None:
                break
            self.seen.append(line)
        return "".join(self.seen)


def _left_behind(report: Path) -> list[str]:
    """The command lines of the processes a command run under LEFTOVERS left running: only
    processes it started, whatever else runs on the machine (tests/e2e/leftovers.py)."""
    return [entry["cmdline"] for entry in json.loads(report.read_text(encoding="utf-8"))]


def _mine(pid: int, name: str) -> list[int]:
    """The live processes ``pid`` started (directly or not) whose command line says ``name``."""
    return [p for p in descendants(pid) if name in cmdline(p)]


def test_leftovers_are_what_the_command_left_running_and_nothing_else(tmp_path: Path) -> None:
    # Another worker's process, naming this test's directory: not the command's.
    bystander = subprocess.Popen(
        ["sleep", "299"], env={**os.environ, "TMPDIR": str(tmp_path)}, cwd=tmp_path
    )
    report = tmp_path / "left.json"
    try:
        # The command leaves a process behind in a session of its own, naming nothing of ours.
        daemon = (
            "import subprocess; "
            "subprocess.Popen(['sleep', '300'], start_new_session=True, env={}, cwd='/')"
        )
        done = subprocess.run(
            [*LEFTOVERS, str(report), sys.executable, "-c", daemon], timeout=60, check=False
        )
        assert done.returncode == 0
        assert _left_behind(report) == ["sleep 300"]
        (left,) = json.loads(report.read_text(encoding="utf-8"))
        assert not alive(left["pid"])  # killed, so that a failing test leaves nothing either
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.kafka
def test_demo_plays_the_scenario_and_stops_everything_it_started(tmp_path: Path) -> None:
    report = tmp_path / "left.json"
    result = subprocess.run(
        [*LEFTOVERS, str(report), *INFOSHARE, "demo"],
        capture_output=True,
        text=True,
        timeout=240,
        env=_env(TMPDIR=str(tmp_path)),
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Kafka 4.1.1 running" in out
    for title in (
        "Received by nhs-riverside-ed",
        "Received by la-northshire",
        "Received by ph-northshire",
        "Audit trail",
    ):
        assert title in out
    assert "withheld" in out and "demo complete" in out
    # Operations: the plan's trace read back from Zipkin, the counters from Prometheus.
    assert "One event's whole path" in out and "read back from Zipkin" in out
    assert "Counters the demo moved" in out and "write audit" in out
    # The IG console: signed in through the identity provider's form, the child's report.
    seen = re.search(r"listed (\d+) decisions about the child on a protection plan", out)
    assert seen is not None and int(seen.group(1)) > 0, out[-2000:]
    assert re.search(r"console  http://127\.0\.0\.1:\d+/console", out)
    assert re.search(r"login    sam\.okafor / \S{12,}", out)
    assert _left_behind(report) == []  # Zipkin, Prometheus, PostgreSQL's server too


@pytest.mark.kafka
def test_demo_interrupted_stops_everything_it_started(tmp_path: Path) -> None:
    report = tmp_path / "left.json"
    proc = subprocess.Popen(
        [*LEFTOVERS, str(report), *INFOSHARE, "demo"],  # SIGINT is passed on to the demo
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(TMPDIR=str(tmp_path)),
    )
    lines = Lines(proc)
    # Every component runs and the scenario plays. Alone this takes ~25 s; beside the
    # 100k-event fault run on two cores, Zipkin's JVM alone can take a minute to start.
    lines.wait_for("1. Social care", timeout=240)
    assert _mine(proc.pid, "services.ops.run")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=90) == 1
    assert "interrupted" in lines.rest()
    assert _left_behind(report) == []


@pytest.mark.kafka
def test_up_serves_until_interrupted(kafka_access: KafkaAccess, tmp_path: Path) -> None:
    # Below Linux's ephemeral range, so no client socket of the stack's own Kafka
    # connections can take one of these ports between the check and the bind.
    base = free_listen_port(21)
    ports = [base + 1, base + 2, base + 10, base + 20]
    proc = subprocess.Popen(
        [
            *INFOSHARE,
            "up",
            "--bootstrap",
            kafka_access.bootstrap,
            "--state-dir",
            str(tmp_path),
            "--base-port",
            str(base),
            "--no-observe",  # Zipkin and Prometheus: the demo's test runs them
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
    )
    lines = Lines(proc)
    try:
        lines.wait_for("Ctrl-C stops everything")
        assert f"http://127.0.0.1:{base + 2}/docs" in "".join(lines.seen)
        assert httpx.get(f"http://127.0.0.1:{base + 20}/healthz").status_code == 200
        # A component that dies is started again.
        (processor,) = _mine(proc.pid, "services.ops.run processor")
        os.kill(processor, signal.SIGKILL)
        assert "processor (exit status -9)" in lines.wait_for("restarted it")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert not any(port_open(p) for p in ports)


def _infoshare(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INFOSHARE, *argv], capture_output=True, text=True, timeout=120, env=_env(), check=False
    )


@pytest.mark.kafka
def test_kafka_start_status_stop(tmp_path: Path) -> None:
    port = free_listen_port(2)
    controller = port + 1
    args = ["--state-dir", str(tmp_path), "--port", str(port), "--controller-port", str(controller)]

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return _infoshare("kafka", *cmd, *args)

    assert run("status").returncode == 3
    started = run("start")
    assert started.returncode == 0, started.stderr
    try:
        status = run("status")
        assert status.returncode == 0 and "running" in status.stdout
        assert port_open(port)
        assert (tmp_path / "kafka" / "logs" / "server.log").exists()
    finally:
        stopped = run("stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert run("status").returncode == 3
    assert not port_open(port)


def test_postgres_start_url_status_stop(tmp_path: Path) -> None:
    port = free_listen_port()
    args = ["--state-dir", str(tmp_path), "--port", str(port)]

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return _infoshare("postgres", *cmd, *args)

    assert run("status").returncode == 3
    refused = run("url")
    assert refused.returncode == 1 and "not running" in refused.stderr
    started = run("start")
    assert started.returncode == 0, started.stderr
    try:
        assert port_open(port) and "running" in run("status").stdout
        url = run("url").stdout.strip()
        assert url.startswith("postgresql+psycopg://infoshare:") and url.endswith(
            f"@127.0.0.1:{port}/infoshare_audit"
        )
        migrated = _infoshare("audit", "migrate", "--database-url", url)
        assert migrated.returncode == 0 and "to revision" in migrated.stdout, migrated.stderr
        assert (tmp_path / "postgres" / "password").stat().st_mode & 0o077 == 0
    finally:
        stopped = run("stop")
        PostgresNode(state_dir=tmp_path, port=port).destroy()
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not port_open(port)


def test_missing_java_says_what_to_install(tmp_path: Path) -> None:
    env = _env(PATH=str(Path(sys.executable).parent), JAVA_HOME=str(tmp_path / "nojava"))
    result = subprocess.run(
        [
            *INFOSHARE,
            "kafka",
            "start",
            "--state-dir",
            str(tmp_path),
            "--port",
            str(port := free_listen_port(2)),
            "--controller-port",
            str(port + 1),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    assert "Java 17 or newer" in result.stderr and "apt-get install" in result.stderr
