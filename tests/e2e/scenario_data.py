"""What of the scenario's children must never leave the services in clear: their NHS
numbers, authority person ids, names, dates of birth and postcodes."""

from __future__ import annotations

from deploy.devstack.demo import scenario

IDENTIFYING: tuple[str, ...] = tuple(
    value
    for child in (scenario.ON_PLAN, scenario.NOT_ON_PLAN, scenario.THIRD)
    for value in (
        child.nhs_number,
        child.person_id,
        child.given_name,
        child.family_name,
        child.date_of_birth,
        child.postcode,
    )
)
