"""One PostgreSQL cluster of infoshare's own, on loopback, with password authentication.

Its settings live under ``<state_dir>/postgres`` (the port, the superuser's password). The
data directory lives there too, unless we are root: PostgreSQL refuses to run as root, so
the server runs as Debian's ``postgres`` user and its data lives where that user can reach,
under ``/var/lib/postgresql/infoshare/<digest of the state directory>``, beside a ``home``
file naming the state directory it belongs to; the process that starts it claims it until it
exits or destroys it (see ``PostgresNode.sweep_orphans``).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from deploy.devstack.postgres.errors import PostgresError
from deploy.devstack.postgres.install import bin_for, data_version, ensure_server, pg_ctl_for
from deploy.devstack.postgres.orphans import claim, sweep
from services.backbone.filelock import exclusive

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

SUPERUSER = "infoshare"
ROOT_DATA = Path("/var/lib/postgresql/infoshare")
LOG_TAIL = 15  # lines of the server's log quoted when it does not start
PASSWORD_WAIT = 5.0  # seconds another process may take to write the password file


@dataclass(frozen=True)
class PgStatus:
    running: bool
    port: int
    data_dir: Path
    installed: bool = True

    def describe(self) -> str:
        if not self.installed:
            return "PostgreSQL is not running (PostgreSQL is not installed)"
        where = f"127.0.0.1:{self.port}"
        if self.running:
            return f"PostgreSQL running at {where} (data in {self.data_dir})"
        return f"PostgreSQL is not running (data in {self.data_dir})"


def _read_written(path: Path) -> str:
    """The content of ``path``, waiting while the process that created it writes it."""
    deadline = time.monotonic() + PASSWORD_WAIT
    while not (value := path.read_text().strip()):
        if time.monotonic() > deadline:
            raise PostgresError(f"{path} is empty (was its writer killed?): delete it")
        time.sleep(0.05)
    return value


class PostgresNode:
    def __init__(self, *, state_dir: Path, port: int = 5433) -> None:
        self.home = state_dir / "postgres"
        self._port = port
        self._as_root = os.geteuid() == 0
        self._claim: int | None = None  # root: the descriptor holding the cluster's claim

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

    def _make_home(self) -> None:
        # It holds the superuser's password: nobody else may list or read it.
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.home.stat().st_mode & 0o777 != 0o700:
            self.home.chmod(0o700)

    def password(self) -> str:
        """The superuser's password: made by whichever process asks first, then kept in
        ``<home>/password``, readable by its owner only."""
        self._make_home()
        path = self.home / "password"
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return _read_written(path)
        value = secrets.token_urlsafe(24)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
            fh.flush()
            os.fsync(fh.fileno())
        return value

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

    def _own_root_dir(self) -> None:
        """Make the root cluster's directory, the postgres user's alone, claim it for as
        long as this process lives (or until ``destroy``), and write down whose it is (the
        home): ``sweep_orphans`` takes it only once the home is gone and nobody claims it."""
        cluster = self.data_dir.parent
        while self._claim is None:  # again if a sweep deleted it as we claimed it
            cluster.mkdir(parents=True, exist_ok=True)
            self._claim = claim(cluster)
        shutil.chown(cluster, "postgres", "postgres")
        cluster.chmod(0o700)
        record = cluster / "home"
        if not record.exists():
            record.write_text(f"{self.home.resolve()}\n")

    def _initdb(self, bin_dir: Path) -> None:
        if data_version(self.data_dir) is not None:
            return
        password = self.password()
        pwfile = self.data_dir.parent / "pwfile"
        pwfile.unlink(missing_ok=True)  # left by an initdb that was killed
        # Readable by its owner only from the moment it exists.
        fd = os.open(pwfile, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            if self._as_root:
                shutil.chown(pwfile, "postgres", "postgres")
            os.write(fd, f"{password}\n".encode())
        finally:
            os.close(fd)
        try:
            self._run(
                str(bin_dir / "initdb"),
                *("-D", str(self.data_dir), "-U", SUPERUSER, f"--pwfile={pwfile}"),
                *("--auth=scram-sha-256", "--encoding=UTF8", "--no-locale"),
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _bin_to_start(self) -> Path:
        """The server that made the cluster's data, or (no cluster yet) the newest one,
        installed if need be."""
        version = data_version(self.data_dir)
        if version is None:
            return ensure_server()
        found = bin_for(version)
        if found is None:
            raise PostgresError(
                f"the data in {self.data_dir} is PostgreSQL {version}'s and that server is "
                f"not installed: apt-get install postgresql-{version} (or pg_upgrade the "
                "data to the installed version)"
            )
        return found

    def _log_tail(self) -> str:
        try:
            lines = self._log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-LOG_TAIL:])

    def status(self) -> PgStatus:
        """Whether the cluster runs; installs nothing."""
        pg_ctl = pg_ctl_for(self.data_dir)
        if pg_ctl is None:
            return PgStatus(False, self.port, self.data_dir, installed=False)
        running = data_version(self.data_dir) is not None and (
            self._run(str(pg_ctl), "-D", str(self.data_dir), "status", check=False).returncode == 0
        )
        return PgStatus(running, self.port, self.data_dir)

    def start(self, *, timeout: int = 60) -> PgStatus:
        """Install (if need be), initialise (once) and start the cluster; idempotent."""
        self._make_home()
        with exclusive(self.home / "lock"):
            bin_dir = self._bin_to_start()
            if self._as_root:
                self._own_root_dir()
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
                said = self._log_tail() or (started.stdout + started.stderr).strip()
                raise PostgresError(
                    f"PostgreSQL did not start on 127.0.0.1:{self._port}; "
                    f"the end of {self._log}:\n{said}"
                )
            return self.status()

    def stop(self) -> bool:
        """Stop the cluster (fast shutdown); False if it was not running. Installs nothing."""
        if not self.status().running:
            return False
        with exclusive(self.home / "lock"):
            pg_ctl = pg_ctl_for(self.data_dir)
            if pg_ctl is None or not self.status().running:
                return False
            self._run(str(pg_ctl), "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
            return True

    def destroy(self) -> None:
        """Stop the cluster and delete its data (tests and benchmarks clean up with it)."""
        self.stop()
        shutil.rmtree(self.data_dir.parent if self._as_root else self.data_dir, True)
        if self._claim is not None:
            os.close(self._claim)
            self._claim = None

    @staticmethod
    def sweep_orphans() -> list[Path]:
        """Stop and delete every root cluster whose home is gone and that nobody claims, as
        when the test run that started it was killed; return their directories (see
        orphans.py: never a cluster a live process uses, nor one just made)."""
        return sweep(ROOT_DATA)

    def _admin(self) -> psycopg.Connection[TupleRow]:
        return self._admin_of("postgres")

    def ensure_database(self, name: str) -> str:
        """Create ``name`` unless it exists; return its SQLAlchemy URL."""
        from psycopg import sql

        with self._admin() as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if exists.fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def ensure_service_role(
        self, role: str, database: str, privileges: Mapping[str, Sequence[str]]
    ) -> str:
        """A login role of ``role``'s own on ``database`` (made once; its password in
        ``<home>/<role>.password``, 0600) with exactly ``privileges`` (table -> rights) and
        nothing else: not the owner, no DDL. Returns its SQLAlchemy URL."""
        from psycopg import sql

        password = self._secret_file(f"{role}.password")
        with self._admin() as conn:
            known = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            verb = "ALTER" if known else "CREATE"
            conn.execute(
                sql.SQL(
                    verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}"
                ).format(sql.Identifier(role), sql.Literal(password))
            )
        with self._admin_of(database) as conn:
            who = sql.Identifier(role)
            # Only the roles granted it may connect (PUBLIC may, on a new database).
            conn.execute(
                sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
                    sql.Identifier(database)
                )
            )
            conn.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), who)
            )
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(who))
            conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM {}").format(who))
            # Before PostgreSQL 15 every role may create in public, through PUBLIC.
            conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(who))
            for table, rights in privileges.items():
                conn.execute(
                    sql.SQL("GRANT {} ON {} TO {}").format(
                        sql.SQL(", ").join(sql.SQL(r) for r in rights), sql.Identifier(table), who
                    )
                )
            conn.execute(
                sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {}").format(who)
            )
            if any("INSERT" in rights for rights in privileges.values()):  # serial keys
                conn.execute(
                    sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {}").format(who)
                )
        return (
            f"postgresql+psycopg://{quote(role, safe='')}:{quote(password, safe='')}"
            f"@127.0.0.1:{self.port}/{database}"
        )

    def _admin_of(self, database: str) -> psycopg.Connection[TupleRow]:
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            password=self.password(),
            dbname=database,
            autocommit=True,
        )

    def _secret_file(self, name: str) -> str:
        """A random secret kept in ``<home>/<name>`` (0600), made on first use."""
        self._make_home()
        path = self.home / name
        if not path.exists():
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(24))
        return path.read_text(encoding="utf-8").strip()

    def drop_database(self, name: str) -> None:
        """Drop ``name`` if it exists, closing the connections still open to it."""
        from psycopg import sql

        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
