"""Code systems and code lists the health adapter reads FHIR R4 through. Data only.

Every list is documented for integrators in ``docs/agencies/health.md``; a code not listed
maps to the documented default (setting type, complaint category) or is refused (a Flag
whose code names no safeguarding concept).
"""

from __future__ import annotations

from typing import NamedTuple

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SNOMED = "http://snomed.info/sct"

ATTENDANCE = "health.unscheduled_care.attendance"
SAFEGUARDING_CONCERN = "health.safeguarding.concern"
WAS_NOT_BROUGHT = "health.appointment.was_not_brought"

# Encounter.status values that show the child arrived (planned and cancelled ones did not).
ARRIVED_STATUSES = frozenset({"arrived", "triaged", "in-progress", "onleave", "finished"})

# attendance.setting_type by Encounter.type (SNOMED CT). 4525004 is international; the
# "Seen in ..." concepts are UK edition members of the UK Core Encounter Type value set
# (https://fhir.hl7.org.uk/ValueSet/UKCore-EncounterType). An EMER encounter without one
# of these is an emergency department attendance.
EMERGENCY_DEPARTMENT = "emergency_department"
SETTING_BY_TYPE = {
    "4525004": EMERGENCY_DEPARTMENT,  # Emergency department patient visit
    "185210004": EMERGENCY_DEPARTMENT,  # Seen in hospital casualty
    "319981000000104": "urgent_treatment_centre",  # Seen in urgent care centre
    "113091000000109": "minor_injury_unit",  # Seen in minor injuries department
    "287721000000104": "walk_in_centre",  # Seen in walk in centre
    "185511000000107": "out_of_hours_gp",  # Seen in out of hours centre
}
# UTC, MIU, walk-in and out-of-hours systems often record these visits as ambulatory
# (class AMB): such an encounter is unscheduled care when its type names the setting.
AMBULATORY_SETTINGS = frozenset(
    {"urgent_treatment_centre", "minor_injury_unit", "walk_in_centre", "out_of_hours_gp"}
)

# attendance.presenting_complaint_category by Encounter.reasonCode (SNOMED CT); else "other".
CATEGORY_BY_REASON = {
    "417163006": "injury",  # Traumatic AND/OR non-traumatic injury
    "125605004": "injury",  # Fracture of bone
    "75478009": "poisoning",  # Poisoning
    "248062006": "self_harm",  # Self-injurious behaviour
    "74732009": "mental_health",  # Mental disorder
    "64572001": "illness",  # Disease
}


class Concern(NamedTuple):
    """What a safeguarding SNOMED CT concept says: the category and whether it is about an
    unborn child (recorded on the mother's record, as CP-IS does)."""

    category: str
    display: str
    unborn: bool = False


# A Flag is a safeguarding concern only when Flag.code carries one of these (UK edition,
# from the RCGP safeguarding coding guidance and GP child protection code lists). Any
# other Flag (an allergy, a big dog) is refused rather than published as a concern.
# 802311000000100 and 802281000000103 are printed with a digit missing in the source list;
# restored here by the SCTID layout (item, namespace 1000000, partition 10, Verhoeff check
# digit, which both pass). Confirm against the current UK edition before go-live.
SAFEGUARDING_CONCEPTS = {
    "836881000000105": Concern("unspecified", "Child is cause for safeguarding concern"),
    "1064961000000107": Concern("unspecified", "Child in family is safeguarding concern"),
    "878111000000109": Concern(
        "unspecified", "Unborn child is cause for safeguarding concern", unborn=True
    ),
    "160877008": Concern("unspecified", "Child at risk"),
    "1076171000000104": Concern("unspecified", "Carer behaviour is cause for safeguarding concern"),
    "802271000000100": Concern("neglect", "Child protection category neglect"),
    "802311000000100": Concern("physical_abuse", "Child protection category physical"),
    "802301000000102": Concern("emotional_abuse", "Child protection category emotional"),
    "802281000000103": Concern("sexual_abuse", "Child protection category sexual"),
    "919461000000108": Concern("exploitation", "At risk of sexual exploitation"),
    "1188261000000103": Concern("exploitation", "At risk of criminal exploitation"),
}
