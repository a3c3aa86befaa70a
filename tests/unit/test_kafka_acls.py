"""The ACLs derived from the agency directory bind each topic to the principals that may use
it: whoever the directory holds, only an agency's own service writes its source topic, and
only its own system (and its own service, and delivery) reads its delivery topic."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.backbone.directory import Agency, AgencyKind, Directory, load_directory
from services.backbone.topics import Topics
from services.ops.kafka_acls import AclRule, Operation, Pattern, Principals, Resource, acl_rules


def _who(rules: list[AclRule], op: Operation, topic: str) -> set[str]:
    """The principals a rule lets do ``op`` on ``topic``."""
    return {
        r.principal
        for r in rules
        if r.resource is Resource.TOPIC
        and r.operation is op
        and (r.name == topic if r.pattern is Pattern.LITERAL else topic.startswith(r.name))
    }


agency_ids = st.lists(
    st.from_regex(r"[a-z][a-z0-9-]{2,12}", fullmatch=True), min_size=1, max_size=6, unique=True
)


@st.composite
def directories(draw: st.DrawFn) -> Directory:
    ids = draw(agency_ids)
    kinds = draw(st.lists(st.sampled_from(AgencyKind), min_size=len(ids), max_size=len(ids)))
    return Directory({i: Agency(i, i, k) for i, k in zip(ids, kinds, strict=True)})


@given(directories(), st.sampled_from(["", "t1.", "demo0a1b."]))
def test_each_topic_is_bound_to_its_principals(directory: Directory, namespace: str) -> None:
    topics, who = Topics(namespace=namespace), Principals(namespace)
    rules = acl_rules(directory, topics)
    for agency in directory:
        own = {who.agency(agency.id)} if agency.kind.publishes else set()
        if agency.kind.publishes:
            assert _who(rules, Operation.WRITE, topics.source(agency.id)) == own
            assert _who(rules, Operation.READ, topics.source(agency.id)) == {who.processor}
        readers = {who.delivery, who.recipient(agency.id), *own}
        assert _who(rules, Operation.READ, topics.deliver(agency.id)) == readers
        assert _who(rules, Operation.WRITE, topics.deliver(agency.id)) == {who.processor}
    assert _who(rules, Operation.WRITE, topics.consent_records) == {who.consent}
    assert _who(rules, Operation.READ, topics.audit) == {who.audit}
    assert _who(rules, Operation.READ, topics.audit_activity) == {who.audit}
    # Disclosure decisions: the processor's alone. Dead letters are audited by the stage that
    # parks them, consent actions and re-identification by the consent API, on the activity
    # topic; the audit store never writes the trail it keeps, and no recipient writes anything.
    assert _who(rules, Operation.WRITE, topics.audit) == {who.processor}
    others = {who.delivery, who.consent, *(who.agency(a.id) for a in directory.publishers)}
    assert _who(rules, Operation.WRITE, topics.audit_activity) == others
    assert _who(rules, Operation.WRITE, topics.audit_checkpoints) == {who.audit}
    assert not any(
        r.operation is Operation.WRITE and ".recipient." in f".{r.principal}" for r in rules
    )


@given(directories())
def test_a_recipient_may_use_only_groups_under_its_own_prefix(directory: Directory) -> None:
    who = Principals("ns.")
    rules = acl_rules(directory, Topics(namespace="ns."))
    for agency in directory:
        groups = [
            r
            for r in rules
            if r.principal == who.recipient(agency.id) and r.resource is Resource.GROUP
        ]
        assert [(g.pattern, g.name) for g in groups] == [(Pattern.PREFIXED, f"ns.{agency.id}.")]


def test_the_usual_directory_prints_one_rule_per_line() -> None:
    rules = acl_rules(load_directory(None), Topics())
    lines = [r.describe() for r in rules]
    assert "User:agency.la-northshire write topic source.la-northshire" in lines
    assert "User:processor write transactional_id infoshare-processor*" in lines
    assert "User:recipient.ph-northshire read topic deliver.ph-northshire" in lines
    assert len(lines) == len(set(lines))


@given(directories(), st.sampled_from(["", "t1.", "demo0a1b."]))
def test_a_deployment_owns_its_principals_and_no_other_namespaces(
    directory: Directory, namespace: str
) -> None:
    mine, other = Principals(namespace), Principals("other0.")
    assert all(mine.owns(p) for p in mine.all(directory))
    assert not any(mine.owns(p) for p in other.all(directory))
    assert not any(mine.owns(p) for p in ("admin", "kafka-broker", f"{namespace}agency.A.b"))


def test_principals_no_longer_in_the_directory_are_the_ones_retired() -> None:
    usual = load_directory(None)
    who = Principals("n1.")
    smaller = Directory({a.id: a for a in usual if a.id != "school-oakfield"})
    known = [*who.all(usual), "admin", "n2.agency.school-oakfield", "n1.someone-else"]
    assert who.retired(smaller, known) == [
        "n1.agency.school-oakfield",
        "n1.recipient.school-oakfield",
    ]
    assert who.retired(usual, known) == []
