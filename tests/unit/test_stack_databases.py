"""The local stack's PostgreSQL names for an agency's role and outbox fit PostgreSQL's 63
bytes, and two long agency ids never share one."""

from __future__ import annotations

from deploy.devstack.postgres.databases import _name


def test_a_short_id_is_the_name_and_a_long_one_fits_and_stays_apart() -> None:
    assert _name("infoshare_outbox_", "nhs-riverside-ed") == "infoshare_outbox_nhs_riverside_ed"
    long_a, long_b = "la-" + "x" * 58 + "-a", "la-" + "x" * 58 + "-b"
    names = {_name("infoshare_agency_", a) for a in (long_a, long_b)}
    assert len(names) == 2
    assert all(len(n.encode()) <= 63 for n in names)
