"""Children looked after return (SSDA903) code lists: legal status, placement type and
reason episode ceased.

Source: Department for Education, *Children looked after return 2023 to 2024: guide*
(SSDA903 items LS, PLACE and REC), as local authority case systems record them for the
return. Cross-checked against the SSDA903 schemas published in Social Finance's
liia-tools (``SSDA903_schema_2024``). Retired codes (REC E43, E44; placement codes
before 2017) are not accepted.
"""

from __future__ import annotations

from services.socialcare.codes import code_list

_GUIDE = "DfE, Children looked after return (SSDA903) 2023 to 2024: guide"

LEGAL_STATUS = code_list(
    name="SSDA903 legal status",
    rule="ssda903.legal_status",
    source=f"{_GUIDE}, legal status (LS)",
    rows=[
        ("C1", "care_order", "Interim care order (Children Act 1989 s38)"),
        ("C2", "care_order", "Full care order (Children Act 1989 s31)"),
        ("D1", "placement_order", "Freeing order granted"),
        ("E1", "placement_order", "Placement order granted (Adoption and Children Act 2002 s21)"),
        ("V2", "accommodated", "Single period of accommodation under Children Act 1989 s20"),
        ("V3", "short_breaks", "Agreed series of short-term breaks, individual episodes recorded"),
        ("V4", "short_breaks", "Agreed series of short-term breaks, agreements recorded"),
        (
            "L1",
            "emergency_protection",
            "Under police protection and in local authority accommodation",
        ),
        ("L2", "emergency_protection", "Emergency protection order (Children Act 1989 s44)"),
        (
            "L3",
            "emergency_protection",
            "Under a child assessment order and in local authority accommodation",
        ),
        ("J1", "youth_justice", "Remanded to local authority or youth detention accommodation"),
        ("J2", "youth_justice", "Placed in local authority accommodation under PACE 1984"),
        (
            "J3",
            "youth_justice",
            "Youth rehabilitation order with residence or intensive fostering requirement",
        ),
    ],
)

PLACEMENT = code_list(
    name="SSDA903 placement type",
    rule="ssda903.placement",
    source=f"{_GUIDE}, placement type (PLACE)",
    rows=[
        (
            "A3",
            "placed_for_adoption",
            "Placed for adoption with consent, with current foster carer(s)",
        ),
        (
            "A4",
            "placed_for_adoption",
            "Placed for adoption with consent, not with current foster carer(s)",
        ),
        (
            "A5",
            "placed_for_adoption",
            "Placed for adoption with placement order, with current foster carer(s)",
        ),
        (
            "A6",
            "placed_for_adoption",
            "Placed for adoption with placement order, not with current foster carer(s)",
        ),
        (
            "H5",
            "independent_living",
            "Supported accommodation not subject to Children's Homes Regulations",
        ),
        ("K1", "secure", "Secure children's home"),
        ("K2", "residential", "Children's home subject to Children's Homes Regulations"),
        (
            "P1",
            "placed_with_parents",
            "Placed with own parent(s) or other person(s) with parental responsibility",
        ),
        (
            "P2",
            "independent_living",
            "Independent living (flat, lodgings, bedsit, B&B, with friends)",
        ),
        ("P3", "independent_living", "Residential employment"),
        ("R1", "residential", "Residential care home"),
        (
            "R2",
            "health_care",
            "NHS or health trust establishment providing medical or nursing care",
        ),
        ("R3", "residential", "Family centre or mother and baby unit"),
        ("R5", "secure", "Young offender institution"),
        ("S1", "residential", "Residential school (not dual-registered as a children's home)"),
        ("T0", "temporary", "All types of temporary move"),
        ("T1", "temporary", "Temporary period in hospital"),
        ("T2", "temporary", "Temporary absence on holiday"),
        (
            "T3",
            "temporary",
            "Temporary accommodation while the usual foster carer(s) are on holiday",
        ),
        ("T4", "temporary", "Temporary accommodation of 7 days or less, any other reason"),
        ("U1", "foster", "Foster placement with relative(s) or friend(s): long term"),
        ("U2", "foster", "Foster placement with relative(s) or friend(s): fostering for adoption"),
        ("U3", "foster", "Foster placement with relative(s) or friend(s): other"),
        ("U4", "foster", "Foster placement with other foster carer(s): long term"),
        ("U5", "foster", "Foster placement with other foster carer(s): fostering for adoption"),
        ("U6", "foster", "Foster placement with other foster carer(s): other"),
        ("Z1", "other", "Other placement"),
    ],
)

NEW_EPISODE_SAME_DAY = "X1"

REASON_EPISODE_CEASED = code_list(
    name="SSDA903 reason episode ceased",
    rule="ssda903.reason_episode_ceased",
    source=f"{_GUIDE}, reason episode ceased (REC)",
    rows=[
        (NEW_EPISODE_SAME_DAY, "new_episode", "Episode ceases and a new one begins the same day"),
        ("E11", "adopted", "Adopted: application unopposed"),
        ("E12", "adopted", "Adopted: consent dispensed with by the court"),
        ("E2", "died", "Died"),
        (
            "E3",
            "transferred_to_another_authority",
            "Care taken over by another local authority in the UK",
        ),
        (
            "E4A",
            "returned_to_family",
            "Returned home to parent(s) or others with parental responsibility, as planned",
        ),
        (
            "E4B",
            "returned_to_family",
            "Returned home to parent(s) or others with parental responsibility, not as planned",
        ),
        (
            "E13",
            "returned_to_family",
            "Left care to live with parent(s) or relatives without parental responsibility",
        ),
        ("E41", "child_arrangements_order", "Residence order or child arrangements order granted"),
        (
            "E45",
            "special_guardianship_order",
            "Special guardianship order to former foster carer(s), relative or friend",
        ),
        (
            "E46",
            "special_guardianship_order",
            "Special guardianship order to former foster carer(s), not relative or friend",
        ),
        (
            "E47",
            "special_guardianship_order",
            "Special guardianship order to other carer(s), relative or friend",
        ),
        (
            "E48",
            "special_guardianship_order",
            "Special guardianship order to other carer(s), not relative or friend",
        ),
        ("E5", "independent_living", "Moved to independent living with formalised support"),
        ("E6", "independent_living", "Moved to independent living without formalised support"),
        ("E7", "adult_social_care", "Transferred to residential care funded by adult social care"),
        ("E9", "custody", "Sentenced to custody"),
        ("E14", "remand_ended", "Accommodation on remand ended"),
        ("E15", "age_assessed_adult", "Age assessment found the young person to be 18 or over"),
        ("E16", "moved_abroad", "Child moved abroad"),
        ("E17", "staying_put", "Aged 18 or over and remained with current carers (staying put)"),
        ("E8", "other", "Ceased for any other reason"),
    ],
)
