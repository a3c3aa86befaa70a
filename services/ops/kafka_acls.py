"""Who may do what on Kafka: one principal per component, per agency service and per
recipient, and the ACLs each needs, derived from the agency directory.

Nothing here talks to a broker (kafka_admin.py applies the rules). The broker runs the
KRaft StandardAuthorizer with ``allow.everyone.if.no.acl.found=false``, so a principal may
do only what a rule below allows. Topic names are bound to principals: only
``agency.<id>`` may write ``source.<id>``, so a record there was published by that agency's
service (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from services.backbone.directory import AGENCY_ID, Directory
from services.backbone.topics import Topics


class Resource(StrEnum):
    TOPIC = "topic"
    GROUP = "group"
    TRANSACTIONAL_ID = "transactional_id"


class Pattern(StrEnum):
    LITERAL = "literal"
    PREFIXED = "prefixed"


class Operation(StrEnum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, order=True)
class AclRule:
    """ALLOW ``principal`` to ``operation`` on ``resource`` named (or prefixed) ``name``,
    from any host. Deny rules are never needed: nothing is allowed that is not listed."""

    principal: str
    resource: Resource
    pattern: Pattern
    name: str
    operation: Operation

    def describe(self) -> str:
        star = "*" if self.pattern is Pattern.PREFIXED else ""
        return f"User:{self.principal} {self.operation} {self.resource} {self.name}{star}"


@dataclass(frozen=True)
class Principals:
    """The principals of one deployment (``namespace`` prefixes them, as it prefixes the
    topics, so that test stacks and demos sharing a broker never share a principal)."""

    namespace: str = ""

    @property
    def processor(self) -> str:
        return f"{self.namespace}processor"

    @property
    def audit(self) -> str:
        return f"{self.namespace}audit"

    @property
    def consent(self) -> str:
        return f"{self.namespace}consent"

    @property
    def delivery(self) -> str:
        return f"{self.namespace}delivery"

    def agency(self, agency_id: str) -> str:
        """The agency service that publishes ``agency_id``'s events."""
        return f"{self.namespace}agency.{agency_id}"

    def recipient(self, agency_id: str) -> str:
        """The agency's own system, reading its deliveries on the Kafka channel."""
        return f"{self.namespace}recipient.{agency_id}"

    def all(self, directory: Directory) -> list[str]:
        names = [self.processor, self.audit, self.consent, self.delivery]
        names += [self.agency(a.id) for a in directory.publishers]
        names += [self.recipient(a.id) for a in directory]
        return names

    def owns(self, name: str) -> bool:
        """Whether ``name`` is one of this deployment's principals, in the directory or
        not: an agency removed from the directory leaves a principal to retire."""
        if not name.startswith(self.namespace):
            return False
        rest = name[len(self.namespace) :]
        role, _, agency_id = rest.partition(".")
        if role in {"agency", "recipient"}:
            return AGENCY_ID.match(agency_id) is not None
        return rest in {"processor", "audit", "consent", "delivery"}

    def retired(self, directory: Directory, known: Iterable[str]) -> list[str]:
        """Those of ``known`` (the brokers' users and ACL holders) that are this
        deployment's but no longer in its directory."""
        current = set(self.all(directory))
        return sorted(n for n in set(known) if self.owns(n) and n not in current)


def recipient_group_prefix(namespace: str, agency_id: str) -> str:
    """Consumer groups a recipient may use: those named ``<agency id>.<anything>``."""
    return f"{namespace}{agency_id}."


def acl_rules(directory: Directory, topics: Topics) -> list[AclRule]:
    """Every ALLOW rule of a deployment, sorted by principal."""
    ns = topics.namespace
    who = Principals(ns)
    rules: list[AclRule] = []

    def allow(
        principal: str,
        op: Operation,
        name: str,
        *,
        prefixed: bool = False,
        resource: Resource = Resource.TOPIC,
    ) -> None:
        pattern = Pattern.PREFIXED if prefixed else Pattern.LITERAL
        rules.append(AclRule(principal, resource, pattern, name, op))

    read, write = Operation.READ, Operation.WRITE
    # The processor: every source and its state in, deliveries, audit and state out, in
    # transactions of its own, in its consumer group.
    p = who.processor
    allow(p, read, topics.source(""), prefixed=True)
    allow(p, read, topics.consent_records)
    allow(p, read, topics.state(""), prefixed=True)
    allow(p, write, topics.state(""), prefixed=True)
    allow(p, write, topics.deliver(""), prefixed=True)
    allow(p, write, topics.audit)
    allow(p, write, topics.dlq("processor"))
    allow(p, read, topics.processor_group, resource=Resource.GROUP)
    allow(p, write, topics.processor_group, prefixed=True, resource=Resource.TRANSACTIONAL_ID)
    # The consent API writes the consent log and reads it back as its view; it audits each
    # re-identification an IG officer asks of it.
    allow(who.consent, write, topics.consent_records)
    allow(who.consent, read, topics.consent_records)
    allow(who.consent, write, topics.audit_activity)
    # Delivery reads every delivery topic (keeping its positions in its own store, so no
    # group); what it cannot deliver is dead-lettered, and every dead letter is audited.
    d = who.delivery
    allow(d, read, topics.deliver(""), prefixed=True)
    allow(d, write, topics.dlq("delivery"))
    allow(d, write, topics.audit_activity)
    # The audit store reads the decisions; what it cannot store is dead-lettered. It alone
    # publishes its signed checkpoints (and reads back where it left off).
    allow(who.audit, read, topics.audit)
    allow(who.audit, read, topics.audit_activity)
    allow(who.audit, write, topics.audit_checkpoints)
    allow(who.audit, read, topics.audit_checkpoints)
    allow(who.audit, write, topics.dlq("audit"))
    allow(who.audit, read, topics.audit_group, resource=Resource.GROUP)
    for agency in directory.publishers:
        # Its own source topic only; the outbox's dead letters, audited; and its own
        # delivery topic, which its inbox view reads for the agency's people.
        a = who.agency(agency.id)
        allow(a, write, topics.source(agency.id))
        allow(a, write, topics.dlq("outbox"))
        allow(a, write, topics.audit_activity)
        allow(a, read, topics.deliver(agency.id))
    for agency in directory:
        r = who.recipient(agency.id)
        allow(r, read, topics.deliver(agency.id))
        allow(
            r, read, recipient_group_prefix(ns, agency.id), prefixed=True, resource=Resource.GROUP
        )
    return sorted(rules)
