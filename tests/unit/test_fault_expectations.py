"""The fault runs' expected audit records are written by hand from the shipped protocols
(``AUDITS_PER_INPUT``), so a core that stopped auditing a withheld decision cannot lower the
expectation with it. Here the pure core is held to those literals."""

from __future__ import annotations

import pytest

from consent.policy.load import load_protocols
from deploy.bench.loadgen import Workload
from services.backbone.directory import Directory
from services.backbone.keyring import Keyring
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics
from tests.e2e.fault_checks import AUDITS_PER_INPUT, assert_exact, audits_per_input_from_core
from tests.unit.factories import LA


def test_the_core_gives_the_audit_records_the_protocols_say(
    keyring: Keyring, directory: Directory
) -> None:
    workload = Workload.make(events=400, children=40, authority_name=directory.get(LA).name)
    schemas = SchemaRegistry.load()
    core = audits_per_input_from_core(
        workload, Topics(namespace="expect.", partitions=6), keyring, directory, schemas
    )
    assert core == {kind: tuple(sorted(codes)) for kind, codes in AUDITS_PER_INPUT.items()}


def test_the_literals_name_the_protocols_they_were_read_from(directory: Directory) -> None:
    """The protocols the comments beside AUDITS_PER_INPUT cite are the shipped ones."""
    shipped = {
        p.id for p in load_protocols(None, directory=directory, schemas=SchemaRegistry.load())
    }
    assert {
        "cpis-protection-plan-flag",
        "cpis-attendance-notification",
        "early-help-attendance",
        "public-health-attendance-analytics",
    } <= shipped


def test_the_order_oracle_groups_by_child_not_by_key() -> None:
    """A child whose deliveries arrive under two keys (so on two partitions, unordered
    against each other) is refused, though each key's are in order."""
    expected = {("child-1", "09:00"), ("child-1", "10:00")}
    one_key = [(0, b"k1", "child-1", "09:00"), (0, b"k1", "child-1", "10:00")]
    assert_exact(one_key, expected, "ph")
    split = [(0, b"k1", "child-1", "10:00"), (1, b"k2", "child-1", "09:00")]
    with pytest.raises(AssertionError, match="more than one key or partition"):
        assert_exact(split, expected, "ph")
