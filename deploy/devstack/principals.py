"""A local stack's Kafka principals: one SCRAM credential per component, agency service and
recipient, kept as files readable by their owner only, stored on the broker, with the ACLs
the directory implies (services/ops/kafka_acls.py).

Files under ``<state>/kafka-clients``: ``<principal>.password`` for each principal, and
``admin.env``, the administrator's settings for CLI commands (``set -a; . admin.env``).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from services.backbone.directory import Directory
from services.backbone.kafka_access import KafkaAccess
from services.backbone.private_files import open_private, private_dir
from services.backbone.topics import Topics
from services.ops import kafka_admin
from services.ops.components import Component
from services.ops.kafka_acls import Principals


@dataclass(frozen=True)
class StackPrincipals:
    directory: Path  # <state>/kafka-clients
    namespace: str

    @property
    def names(self) -> Principals:
        return Principals(self.namespace)

    def of(self, component: Component) -> str:
        """The principal a component runs as."""
        if component.agency_id:
            return self.names.agency(component.agency_id)
        return f"{self.namespace}{component.name}"

    def password_file(self, principal: str) -> Path:
        return self.directory / f"{principal}.password"

    def password(self, principal: str) -> str:
        """The principal's password, made on first use."""
        path = self.password_file(principal)
        if not path.exists():
            private_dir(self.directory)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(24))
        return path.read_text(encoding="utf-8").strip()

    def access(self, admin: KafkaAccess, principal: str) -> KafkaAccess:
        """``principal``'s access to the brokers ``admin`` reaches."""
        return KafkaAccess(
            admin.bootstrap,
            protocol="SASL_SSL",
            username=principal,
            password=self.password(principal),
            ca_file=admin.ca_file,
        )

    def env(self, admin: KafkaAccess, principal: str) -> dict[str, str]:
        """A child process's settings for ``principal``: the password as a file, not a
        variable (a variable is inherited by whatever the process starts)."""
        env = self.access(admin, principal).as_env()
        env.pop("INFOSHARE_KAFKA_PASSWORD")
        env["INFOSHARE_KAFKA_PASSWORD_FILE"] = str(self.password_file(principal))
        return env

    def provision(self, admin: KafkaAccess, directory: Directory, topics: Topics) -> int:
        """Store every principal's credential on the brokers and apply their ACLs; returns
        how many ACL rules were created."""
        names = self.names.all(directory)
        kafka_admin.upsert_users(admin, {n: self.password(n) for n in names})
        changes = kafka_admin.converge_acls(admin, directory, topics)
        self.write_admin_env(admin)
        return len(changes.created)

    def retire(self, admin: KafkaAccess) -> list[str]:
        """Remove every principal of the namespace from the brokers: logins and ACLs."""
        return kafka_admin.retire_namespace(admin, self.namespace)

    def write_admin_env(self, admin: KafkaAccess) -> Path:
        """The administrator's settings for operator commands; the password in a file of
        its own, so that reading the settings never puts it in an environment."""
        private_dir(self.directory)
        env = admin.as_env()
        password = env.pop("INFOSHARE_KAFKA_PASSWORD", None)
        if password is not None:
            secret = self.directory / "admin.password"
            _write_private(secret, password)
            env["INFOSHARE_KAFKA_PASSWORD_FILE"] = str(secret)
        path = self.directory / "admin.env"
        _write_private(path, "".join(f"{k}={v}\n" for k, v in sorted(env.items())))
        return path


def _write_private(path: Path, text: str) -> None:
    """Readable by the owner only, from before the first byte."""
    with open_private(path, "wb") as fh:
        fh.write(text.encode())
