"""Administering a secured Kafka: SCRAM credentials, ACLs and topics as declared.

The Kafka edge of kafka_acls.py and of the topic declaration (services/backbone/topics.py),
through librdkafka's admin client (aiokafka has no ACL or SCRAM administration). Run as an
administrator principal (a broker super user); every call waits for the broker's answer and
raises AdminError with what the broker said.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from services.backbone.directory import Directory
from services.backbone.errors import BackboneError
from services.backbone.kafka_access import KafkaAccess
from services.backbone.topics import Topics, TopicSpec
from services.ops.kafka_acls import AclRule, Operation, Pattern, Principals, Resource, acl_rules

log = logging.getLogger(__name__)
SCRAM_ITERATIONS = 8192
_TIMEOUT_S = 30.0
_RESOURCE = {
    Resource.TOPIC: ResourceType.TOPIC,
    Resource.GROUP: ResourceType.GROUP,
    Resource.TRANSACTIONAL_ID: ResourceType.TRANSACTIONAL_ID,
}
_PATTERN = {
    Pattern.LITERAL: ResourcePatternType.LITERAL,
    Pattern.PREFIXED: ResourcePatternType.PREFIXED,
}
_OPERATION = {Operation.READ: AclOperation.READ, Operation.WRITE: AclOperation.WRITE}


class AdminError(BackboneError):
    """The broker refused or failed an administrative request."""


def admin_client(access: KafkaAccess) -> AdminClient:
    conf: dict[str, Any] = access.librdkafka()
    conf["socket.timeout.ms"] = int(_TIMEOUT_S * 1000)
    # librdkafka's own messages (a refused login it retries, say) go to our log, not stderr.
    return AdminClient(conf, logger=log)


def _wait(futures: Mapping[Any, Future[Any]], what: str) -> dict[Any, Any]:
    results, failures = {}, []
    for key, future in futures.items():
        try:
            results[key] = future.result(timeout=_TIMEOUT_S)
        except KafkaException as exc:
            failures.append(f"{key}: {exc.args[0].str() if exc.args else exc}")
        except TimeoutError:
            failures.append(f"{key}: no answer within {_TIMEOUT_S:.0f}s")
    if failures:
        raise AdminError(f"Kafka refused to {what}: " + "; ".join(map(str, failures)))
    return results


def upsert_users(access: KafkaAccess, passwords: Mapping[str, str]) -> None:
    """Create or replace each user's SCRAM-SHA-512 credential."""
    if not passwords:
        return
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    alterations: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(user, info, password.encode())
        for user, password in passwords.items()
    ]
    client = admin_client(access)
    _wait(client.alter_user_scram_credentials(alterations), "store SCRAM credentials")
    # The controller has stored them; a broker applies them a moment later. Return when a
    # broker accepts them, so that a client started next is not refused.
    for user, password in passwords.items():
        login = replace(access, protocol="SASL_SSL", username=user, password=password)
        try:
            admin_client(login).list_topics(timeout=_TIMEOUT_S)
        except KafkaException as exc:
            raise AdminError(f"the broker does not accept {user}'s new credential: {exc}") from None


def scram_users(access: KafkaAccess) -> set[str]:
    """Every user the brokers hold a SCRAM credential for."""
    client = admin_client(access)  # kept until the answer: its end fails the request
    listing = client.describe_user_scram_credentials()
    assert isinstance(listing, Future)  # asked for every user: one answer
    return set(_wait({"users": listing}, "list SCRAM users")["users"])


def delete_users(access: KafkaAccess, names: Iterable[str]) -> list[str]:
    """Delete the SCRAM credential of each of ``names`` that has one; returns those."""
    doomed = sorted(set(names) & scram_users(access))
    if doomed:
        deletions: list[UserScramCredentialAlteration] = [
            UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_512) for user in doomed
        ]
        client = admin_client(access)
        _wait(client.alter_user_scram_credentials(deletions), "delete credentials")
    return doomed


def _binding(rule: AclRule) -> AclBinding:
    return AclBinding(
        _RESOURCE[rule.resource],
        rule.name,
        _PATTERN[rule.pattern],
        f"User:{rule.principal}",
        "*",
        _OPERATION[rule.operation],
        AclPermissionType.ALLOW,
    )


def _rule(binding: AclBinding) -> AclRule | None:
    """The rule a binding on the broker is, if it is of a kind we write."""
    try:
        resource = next(k for k, v in _RESOURCE.items() if v == binding.restype)
        pattern = next(k for k, v in _PATTERN.items() if v == binding.resource_pattern_type)
        operation = next(k for k, v in _OPERATION.items() if v == binding.operation)
    except StopIteration:
        return None
    if binding.permission_type != AclPermissionType.ALLOW or binding.host != "*":
        return None
    principal = binding.principal.removeprefix("User:")
    return AclRule(principal, resource, pattern, binding.name, operation)


def _exactly(binding: AclBinding) -> AclBindingFilter:
    """A filter that matches this one binding."""
    return AclBindingFilter(
        binding.restype,
        binding.name,
        binding.resource_pattern_type,
        binding.principal,
        binding.host,
        binding.operation,
        binding.permission_type,
    )


def _held_by(principal: str | None) -> AclBindingFilter:
    """A filter for every binding of ``principal`` (None: of anyone)."""
    # None matches any name and any host (the stubs say str; the library means both).
    return AclBindingFilter(
        ResourceType.ANY,
        None,  # type: ignore[arg-type]
        ResourcePatternType.ANY,
        None if principal is None else f"User:{principal}",  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        AclOperation.ANY,
        AclPermissionType.ANY,
    )


def current_acls(access: KafkaAccess, principals: Iterable[str]) -> list[AclRule | AclBinding]:
    """Every binding the broker holds for ``principals`` (as rules where they are ours)."""
    client = admin_client(access)
    found: list[AclRule | AclBinding] = []
    for principal in principals:
        bindings = _wait({principal: client.describe_acls(_held_by(principal))}, "describe ACLs")
        for binding in bindings[principal]:
            found.append(_rule(binding) or binding)
    return found


def known_principals(access: KafkaAccess) -> set[str]:
    """Every user the brokers hold a SCRAM credential or an ACL for."""
    client = admin_client(access)
    bindings = _wait({"acls": client.describe_acls(_held_by(None))}, "describe ACLs")["acls"]
    return scram_users(access) | {b.principal.removeprefix("User:") for b in bindings}


def apply_acls(
    access: KafkaAccess, rules: Iterable[AclRule], principals: Iterable[str]
) -> tuple[list[AclRule], list[str]]:
    """Make the broker's ACLs of ``principals`` exactly ``rules``: create what is missing,
    delete what is no longer declared. Returns (created, deleted descriptions)."""
    wanted, principals = sorted(set(rules)), list(principals)
    present = current_acls(access, principals)
    missing = [r for r in wanted if r not in present]
    stale = [b for b in present if b not in wanted]
    client = admin_client(access)
    if missing:
        _wait(client.create_acls([_binding(r) for r in missing]), "create ACLs")
    deleted = []
    if stale:
        bindings = [_binding(b) if isinstance(b, AclRule) else b for b in stale]
        _wait(client.delete_acls([_exactly(b) for b in bindings]), "delete ACLs")
        deleted = [b.describe() if isinstance(b, AclRule) else str(b) for b in stale]
    # The controller has them; brokers authorise from their copy of the metadata, a moment
    # later. Return once a broker answers with exactly these.
    deadline = time.monotonic() + _TIMEOUT_S
    while (missing or stale) and sorted(map(str, current_acls(access, principals))) != sorted(
        map(str, wanted)
    ):
        if time.monotonic() > deadline:
            raise AdminError(f"the brokers did not apply the ACLs within {_TIMEOUT_S:.0f}s")
        time.sleep(0.1)
    return missing, deleted


@dataclass(frozen=True)
class AclChanges:
    created: list[AclRule]
    deleted: list[str]  # descriptions of the bindings deleted
    retired: list[str]  # principals no longer in the directory: ACLs and credential gone


def converge_acls(access: KafkaAccess, directory: Directory, topics: Topics) -> AclChanges:
    """Make the brokers' ACLs of the deployment (``topics.namespace``) exactly those its
    directory implies, and retire every principal of it the directory no longer names: an
    agency removed keeps neither a right nor a login."""
    who = Principals(topics.namespace)
    retired = who.retired(directory, known_principals(access))
    rules = acl_rules(directory, topics)
    created, deleted = apply_acls(access, rules, who.all(directory) + retired)
    delete_users(access, retired)
    return AclChanges(created, deleted, retired)


def retire_namespace(access: KafkaAccess, namespace: str) -> list[str]:
    """Delete every ACL and credential of the deployment's principals (a demo's or a test's
    stack, stopping, on a broker that runs on); returns the principals retired."""
    if not namespace:
        raise AdminError("refusing to retire the principals of the unnamespaced deployment")
    who = Principals(namespace)
    doomed = sorted(n for n in known_principals(access) if who.owns(n))
    apply_acls(access, [], doomed)
    delete_users(access, doomed)
    return doomed


def apply_topics(access: KafkaAccess, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the declared topics that are missing (returns their names); refuse, naming
    each shortfall, when an existing topic is weaker than its declaration."""
    specs = list(specs)
    weaker = topic_shortfalls(access, specs)
    if weaker:
        said = "; ".join(f"{name}: {', '.join(short)}" for name, short in weaker.items())
        raise AdminError(
            f"existing topics are weaker than declared ({said}): raise them "
            "(kafka-configs, kafka-reassign-partitions) or delete them, then start again"
        )
    client = admin_client(access)
    existing = set(client.list_topics(timeout=_TIMEOUT_S).topics)
    new = [
        NewTopic(s.name, s.partitions, s.replication, config=s.configs())
        for s in specs
        if s.name not in existing
    ]
    if new:
        _wait(client.create_topics(new, operation_timeout=_TIMEOUT_S), "create topics")
        _until_listed(client, {t.topic for t in new})
    return [t.topic for t in new]


def _until_listed(client: AdminClient, names: set[str]) -> None:
    """The controller has made the topics; return once a broker lists them with leaders, so
    that what starts next (a stack's components, the next check) finds them."""
    deadline = time.monotonic() + _TIMEOUT_S
    while True:
        listed = client.list_topics(timeout=_TIMEOUT_S).topics
        ready = {
            n
            for n in names
            if n in listed
            and listed[n].partitions
            and all(p.leader >= 0 for p in listed[n].partitions.values())
        }
        if ready == names:
            return
        if time.monotonic() > deadline:
            raise AdminError(f"topics not ready within {_TIMEOUT_S:.0f}s: {sorted(names - ready)}")
        time.sleep(0.1)


def topic_shortfalls(access: KafkaAccess, specs: Iterable[TopicSpec]) -> dict[str, list[str]]:
    """For each existing declared topic weaker than declared, how it falls short."""
    client = admin_client(access)
    metadata = client.list_topics(timeout=_TIMEOUT_S).topics
    present = [s for s in specs if s.name in metadata]
    if not present:
        return {}
    resources = [ConfigResource(ResourceType.TOPIC, s.name) for s in present]
    described = _wait(client.describe_configs(resources), "describe topic configs")
    configs = {
        resource.name: {k: entry.value for k, entry in entries.items()}
        for resource, entries in described.items()
    }
    shortfalls = {}
    for spec in present:
        partitions = metadata[spec.name].partitions
        replication = min((len(p.replicas) for p in partitions.values()), default=0)
        short = spec.weaker_than_declared(len(partitions), replication, configs[spec.name])
        if short:
            shortfalls[spec.name] = short
    return shortfalls
