"""Start, stop and inspect one single-node KRaft broker whose state lives in a directory.

The broker runs detached (its own session) so that a Ctrl-C aimed at the caller reaches
the broker only through :meth:`BrokerNode.stop`, which the caller runs on its way out.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template

from deploy.devstack.broker.errors import BrokerError
from deploy.devstack.broker.fetch import DEPLOY_DIR, ensure_jars, pinned_version
from deploy.devstack.broker.tls import Tls
from services.backbone.filelock import exclusive
from services.backbone.kafka_access import KafkaAccess
from services.backbone.private_files import open_private, private_dir

_STARTED = "Kafka Server started"
ADMIN_USER = "admin"
"""The administrator principal (a super user) of a secured local broker."""


@dataclass(frozen=True)
class BrokerSecrets:
    """What a secured broker (or every broker of a cluster) shares: the CA and the brokers'
    certificate, and the administrator's SCRAM password, under ``directory``."""

    directory: Path

    @property
    def tls(self) -> Tls:
        return Tls(self.directory / "tls")

    @property
    def admin_password_file(self) -> Path:
        return self.directory / "admin.password"

    def ensure(self) -> BrokerSecrets:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.tls.ensure()
        if not self.admin_password_file.exists():
            fd = os.open(self.admin_password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(24))
        return self

    def admin_password(self) -> str:
        return self.admin_password_file.read_text(encoding="utf-8").strip()

    def access(self, bootstrap: str, username: str, password: str) -> KafkaAccess:
        """A SCRAM principal's access to brokers that trust this CA."""
        return KafkaAccess(
            bootstrap,
            protocol="SASL_SSL",
            username=username,
            password=password,
            ca_file=self.tls.ca_file,
        )


@dataclass(frozen=True)
class NodeStatus:
    running: bool
    pid: int | None
    bootstrap: str
    version: str
    state_dir: Path
    secured: bool = True

    def describe(self) -> str:
        if self.running:
            how = "SASL_SSL, ACLs enforced" if self.secured else "PLAINTEXT, for debugging only"
            return f"Kafka {self.version} running (pid {self.pid}) at {self.bootstrap} ({how})"
        return f"Kafka {self.version} is not running (state in {self.state_dir})"


def find_java() -> str:
    """Path of a Java 17+ runtime, or a BrokerError that says what to install."""
    java_home = os.environ.get("JAVA_HOME")
    candidates = [str(Path(java_home) / "bin" / "java")] if java_home else []
    candidates.append("java")
    for candidate in candidates:
        try:
            out = subprocess.run(
                [candidate, "-version"], capture_output=True, text=True, check=False
            )
        except FileNotFoundError:
            continue
        match = re.search(r'version "(\d+)', out.stderr + out.stdout)
        if match and int(match.group(1)) >= 17:
            return candidate
    raise BrokerError(
        "Java 17 or newer is needed to run Kafka and none was found: install it "
        "(apt-get install openjdk-17-jre-headless) or set JAVA_HOME to a JDK 17+"
    )


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class BrokerNode:
    """One broker: its files under ``state_dir``, its jars under ``cache_dir``."""

    def __init__(
        self,
        *,
        state_dir: Path,
        cache_dir: Path,
        port: int = 9092,
        controller_port: int = 9093,
        tls_port: int | None = None,
        secured: bool = True,
        node_id: int = 1,
        voters: tuple[tuple[int, int], ...] | None = None,
        cluster_id: str | None = None,
        secrets_dir: Path | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        """``secured`` (the default): SASL_SSL for clients on ``port``, mutual TLS on
        ``tls_port`` (default ``port + 2``), TLS for the controller, ACLs enforced; else
        PLAINTEXT, for debugging. ``voters`` (node id, controller port) makes this node one
        of a static quorum (a cluster, which also gives ``cluster_id`` and ``secrets_dir``);
        None: a standalone node. ``settings``: broker properties added to (and overriding)
        the template's, as a test that must make the broker act sooner sets them."""
        self.state_dir = state_dir
        self.cache_dir = cache_dir
        self.port = port
        self.controller_port = controller_port
        self.tls_port = tls_port if tls_port is not None else port + 2
        self.secured = secured
        self.node_id = node_id
        self.voters = voters
        self.cluster_id = cluster_id
        self.secrets = BrokerSecrets(secrets_dir or state_dir)
        self.settings = dict(settings or {})
        self.version = pinned_version()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ports(self) -> tuple[int, ...]:
        if self.secured:
            return (self.port, self.controller_port, self.tls_port)
        return (self.port, self.controller_port)

    def admin_access(self) -> KafkaAccess:
        """The administrator's access (a super user); PLAINTEXT for a plaintext broker."""
        if not self.secured:
            return KafkaAccess.plaintext(self.bootstrap)
        return self.secrets.access(self.bootstrap, ADMIN_USER, self.secrets.admin_password())

    @property
    def _pid_file(self) -> Path:
        return self.state_dir / "kafka.pid"

    @property
    def _logs(self) -> Path:
        return self.state_dir / "logs"

    def _pid(self) -> int | None:
        """The recorded broker's pid, only if that process is alive and is this state
        directory's Kafka: a stale pid file must never make us signal another process."""
        try:
            pid = int(self._pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not _alive(pid):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        config = str(self.state_dir / "server.properties").encode()
        return pid if b"kafka.Kafka" in cmdline and config in cmdline else None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One start or stop at a time per state directory (two starts would race to
        format the storage and to own the pid file)."""
        with exclusive(self.state_dir / "kafka.lock"):
            yield

    def status(self) -> NodeStatus:
        pid = self._pid()
        running = pid is not None and port_open(self.port)
        return NodeStatus(running, pid, self.bootstrap, self.version, self.state_dir, self.secured)

    def _write_config(self) -> Path:
        name = "server-secured" if self.secured else "server"
        template = Template((DEPLOY_DIR / f"{name}.properties.template").read_text())
        if self.voters is None:
            quorum = f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}"
        else:
            voters = ",".join(f"{n}@127.0.0.1:{p}" for n, p in self.voters)
            quorum = f"controller.quorum.voters={voters}"
        replication = 1 if self.voters is None else min(3, len(self.voters))
        config = self.state_dir / "server.properties"
        config.write_text(
            template.substitute(
                node_id=self.node_id,
                quorum=quorum,
                port=self.port,
                controller_port=self.controller_port,
                tls_port=self.tls_port,
                tls_dir=self.secrets.tls.directory,
                admin_user=ADMIN_USER,
                replication=replication,
                min_isr=min(2, replication),
                data_dir=self.state_dir / "data",
            )
            + "".join(f"{name}={value}\n" for name, value in self.settings.items())
        )
        return config

    @property
    def _secured_marker(self) -> Path:
        return self.state_dir / "data" / ".infoshare-secured"

    def _format(self, java: str, libs: Path, config: Path) -> None:
        if (self.state_dir / "data" / "meta.properties").exists():
            if self.secured and not self._secured_marker.exists():
                raise BrokerError(
                    f"the broker's storage in {self.state_dir} was made without security "
                    "(with --plaintext, or by an older infoshare), so it has no administrator: "
                    f"remove {self.state_dir} to start afresh, or start it with --plaintext"
                )
            return
        cluster_id = self.cluster_id or new_cluster_id()
        command = [
            java,
            "-cp",
            f"{libs}/*",
            "kafka.tools.StorageTool",
            "format",
            # One argument: a random id may start with "-", which would read as an option.
            f"--cluster-id={cluster_id}",
            "-c",
            str(config),
        ]
        if self.voters is None:
            command.append("--standalone")
        if self.secured:
            # The administrator exists from the start; it adds every other principal.
            password = self.secrets.admin_password()
            command.append(f"--add-scram=SCRAM-SHA-512=[name={ADMIN_USER},password={password}]")
        # The arguments from a file only the owner reads, never on a command line every
        # process on the machine can read (/proc/<pid>/cmdline).
        argfile = self.state_dir / "format.args"
        with open_private(argfile, "wb") as fh:
            fh.write(java_argfile(command[1:]).encode("utf-8"))
        try:
            result = subprocess.run(
                [java, f"@{argfile}"], capture_output=True, text=True, check=False
            )
        finally:
            argfile.unlink(missing_ok=True)
        if result.returncode != 0:
            said = result.stdout + result.stderr
            if self.secured:  # never the administrator's password, should the tool echo it
                said = said.replace(self.secrets.admin_password(), "[redacted]")
            raise BrokerError("Formatting the Kafka storage failed:\n" + said)
        if self.secured:
            self._secured_marker.write_text("formatted with its administrator\n")

    def start(self, *, timeout: float = 90.0) -> NodeStatus:
        """Start the broker unless it runs already; return once it accepts clients."""
        with self._locked():
            return self._start(timeout)

    def _start(self, timeout: float) -> NodeStatus:
        current = self.status()
        if current.running:
            return current
        if current.pid is not None:
            raise BrokerError(
                f"Kafka (pid {current.pid}) is starting or stuck: wait, or run "
                "`infoshare kafka stop` first"
            )
        taken = [p for p in self.ports if port_open(p)]
        if taken:
            raise BrokerError(
                f"port {', '.join(map(str, taken))} is taken by another process: "
                "stop it or choose other ports (--port, --controller-port, --tls-port)"
            )
        java = find_java()
        libs = ensure_jars(self.cache_dir)
        private_dir(self.state_dir)
        if self.secured:
            self.secrets.ensure()
        private_dir(self._logs)  # Kafka's own logs are written with the umask's mode
        config = self._write_config()
        self._format(java, libs, config)
        server_log = self._logs / "server.log"
        offset = server_log.stat().st_size if server_log.exists() else 0
        with open_private(self._logs / "stdout.log", "ab") as out:
            proc = subprocess.Popen(
                [
                    java,
                    "-Xms256m",
                    "-Xmx768m",
                    "-XX:+UseG1GC",
                    "-Djava.awt.headless=true",
                    f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.properties'}",
                    f"-Dkafka.logs.dir={self._logs}",
                    "-cp",
                    f"{libs}/*",
                    "kafka.Kafka",
                    str(config),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BrokerError(
                    f"Kafka exited with status {proc.returncode} while starting; "
                    f"see {self._logs / 'server.log'}"
                )
            if _logged_since(server_log, offset, _STARTED) and port_open(self.port):
                return self.status()
            time.sleep(0.2)
        self._stop(30.0)
        raise BrokerError(f"Kafka did not start within {timeout:.0f}s; see {server_log}")

    def stop(self, *, timeout: float = 30.0) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout``). False if not running."""
        with self._locked():
            return self._stop(timeout)

    def kill(self) -> bool:
        """Hard-stop the broker (SIGKILL, no controlled shutdown), as a crash would. For
        fault tests; False if not running."""
        with self._locked():
            return self._stop(0.0)

    def _stop(self, timeout: float) -> bool:
        pid = self._pid()
        if pid is None:
            self._pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM if timeout > 0 else signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                _reap(pid)
                time.sleep(0.05)
        self._pid_file.unlink(missing_ok=True)
        # A killed process's listening sockets close a moment after it dies; a start
        # right after must not mistake them for another process's.
        closing = time.monotonic() + 10
        while any(port_open(p) for p in self.ports) and time.monotonic() < closing:
            time.sleep(0.05)
        return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # not our child: nothing to reap
        os.waitpid(pid, os.WNOHANG)


def new_cluster_id() -> str:
    """A random cluster id in Kafka's own form: 16 bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _logged_since(path: Path, offset: int, needle: str) -> bool:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return needle.encode() in fh.read()
    except OSError:
        return False


def java_argfile(args: list[str]) -> str:
    """``args`` as a java launcher argument file (``java @file``): one per line, each
    quoted, with backslashes and quotes escaped as the launcher reads them."""
    quoted = ('"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"' for a in args)
    return "\n".join(quoted) + "\n"
