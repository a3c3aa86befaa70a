"""One PostgreSQL cluster of infoshare's own, on loopback, with password authentication.

Its settings live under ``<state_dir>/postgres`` (the port, the superuser's password). The
data directory lives there too, unless we are root: PostgreSQL refuses to run as root, so
the server runs as Debian's ``postgres`` user and its data lives where that user can reach,
under ``/var/lib/postgresql/infoshare/<digest of the state directory>``.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from services.backbone.filelock import exclusive
from services.pgserver.errors import PostgresError
from services.pgserver.install import ensure_server

SUPERUSER = "infoshare"
ROOT_DATA = Path("/var/lib/postgresql/infoshare")


@dataclass(frozen=True)
class PgStatus:
    running: bool
    port: int
    data_dir: Path

    def describe(self) -> str:
        where = f"127.0.0.1:{self.port}"
        if self.running:
            return f"PostgreSQL running at {where} (data in {self.data_dir})"
        return f"PostgreSQL is not running (data in {self.data_dir})"


class PostgresNode:
    def __init__(self, *, state_dir: Path, port: int = 5433) -> None:
        self.home = state_dir / "postgres"
        self._port = port
        self._as_root = os.geteuid() == 0

    @property
    def port(self) -> int:
        """The port the cluster was last started on (or will be started on)."""
        try:
            return int((self.home / "port").read_text())
        except (OSError, ValueError):
            return self._port

    @property
    def data_dir(self) -> Path:
        if not self._as_root:
            return self.home / "data"
        digest = hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:16]
        return ROOT_DATA / digest / "data"

    @property
    def _log(self) -> Path:
        return self.data_dir.parent / "server.log"

    def password(self) -> str:
        path = self.home / "password"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(24))
        return path.read_text().strip()

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this cluster (psycopg 3 driver)."""
        return (
            f"postgresql+psycopg://{SUPERUSER}:{quote(self.password(), safe='')}"
            f"@127.0.0.1:{self.port}/{database}"
        )

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = ["runuser", "-u", "postgres", "--", *argv] if self._as_root else list(argv)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise PostgresError(
                f"{Path(argv[0]).name} failed ({result.returncode}):\n"
                + (result.stdout + result.stderr).strip()[-2000:]
            )
        return result

    def _own(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            shutil.chown(path, "postgres", "postgres")
            path.chmod(0o700)

    def _initdb(self, bin_dir: Path) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self._own(self.data_dir.parent)
        pwfile = self.data_dir.parent / "pwfile"
        pwfile.write_text(self.password() + "\n")
        if self._as_root:
            shutil.chown(pwfile, "postgres", "postgres")
        pwfile.chmod(0o600)
        try:
            self._run(
                str(bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def status(self) -> PgStatus:
        bin_dir = ensure_server()
        running = (self.data_dir / "PG_VERSION").exists() and (
            self._run(str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "status", check=False)
        ).returncode == 0
        return PgStatus(running, self.port, self.data_dir)

    def start(self, *, timeout: int = 60) -> PgStatus:
        """Install (if need be), initialise (once) and start the cluster; idempotent."""
        with exclusive(self.home / "lock"):
            bin_dir = ensure_server()
            self._initdb(bin_dir)
            current = self.status()
            if current.running:
                return current
            (self.home / "port").write_text(str(self._port))
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self._port} "
                "-c unix_socket_directories='' -c max_connections=200"
            )
            started = self._run(
                str(bin_dir / "pg_ctl"),
                *("-D", str(self.data_dir), "-l", str(self._log), "-w", "-t", str(timeout)),
                *("-o", options, "start"),
                check=False,
            )
            if started.returncode != 0:
                raise PostgresError(
                    f"PostgreSQL did not start on 127.0.0.1:{self._port} (is the port taken?); "
                    f"see {self._log}"
                )
            return self.status()

    def stop(self) -> bool:
        """Stop the cluster (fast shutdown); False if it was not running."""
        with exclusive(self.home / "lock"):
            if not self.status().running:
                return False
            bin_dir = ensure_server()
            self._run(str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
            return True

    def destroy(self) -> None:
        """Stop the cluster and delete its data (tests and benchmarks clean up with it)."""
        self.stop()
        shutil.rmtree(self.data_dir.parent if self._as_root else self.data_dir, True)

    def ensure_database(self, name: str) -> str:
        """Create ``name`` unless it exists; return its SQLAlchemy URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            password=self.password(),
            dbname="postgres",
            autocommit=True,
        ) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if exists.fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)
