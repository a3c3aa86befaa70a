"""Children in need (CIN) census code lists: referral source, primary need, factors
identified at the end of assessment, and reason for closure.

Source: Department for Education, *Children in need census 2023 to 2024: guide* (the
code sets of the census's common basic data set items), as local authority case systems
(Liquidlogic LCS, Mosaic, Eclipse) record them for the census. Cross-checked against
the census schemas published in Social Finance's liia-tools (``CIN_schema_2016`` and
the 2017 to 2023 differences). Codes retired before 2023 (factors 8A, 18A, 19A) are not
accepted: a case system still sending them needs its census mapping updated.
"""

from __future__ import annotations

from services.socialcare.codes import code_list

_GUIDE = "DfE, Children in need census 2023 to 2024: guide"

REFERRAL_SOURCE = code_list(
    name="CIN census referral source",
    rule="cin.referral_source",
    source=f"{_GUIDE}, referral source",
    rows=[
        ("1A", "individual", "Individual: family member, relative or carer"),
        ("1B", "individual", "Individual: acquaintance (including neighbours and child minders)"),
        ("1C", "individual", "Individual: self"),
        ("1D", "individual", "Individual: other (including strangers)"),
        ("2A", "schools", "Schools"),
        ("2B", "education_services", "Education services"),
        ("3A", "health_services", "Health services: general practitioner (GP)"),
        ("3B", "health_services", "Health services: health visitor"),
        ("3C", "health_services", "Health services: school nurse"),
        ("3D", "health_services", "Health services: other primary health services"),
        ("3E", "health_services", "Health services: A&E (emergency department)"),
        ("3F", "health_services", "Health services: other (for example hospice)"),
        ("4", "housing", "Housing: local authority housing or housing association"),
        ("5A", "la_services", "LA services: social care (for example adult social care)"),
        ("5B", "la_services", "LA services: other internal department (for example youth justice)"),
        ("5C", "la_services", "LA services: external (for example another authority's services)"),
        ("5D", "la_services", "LA services: early help"),
        ("6", "police", "Police"),
        (
            "7",
            "other_legal_agency",
            "Other legal agency: courts, probation, immigration, Cafcass, prison",
        ),
        ("8", "other", "Other: children's centres, independent providers, voluntary organisations"),
        ("9", "anonymous", "Anonymous"),
        ("10", "unknown", "Unknown"),
    ],
)

PRIMARY_NEED = code_list(
    name="CIN census primary need",
    rule="cin.primary_need",
    source=f"{_GUIDE}, primary need code",
    rows=[
        ("N0", "not_stated", "Not stated"),
        ("N1", "abuse_or_neglect", "Abuse or neglect"),
        ("N2", "child_disability_or_illness", "Child's disability or illness"),
        ("N3", "parental_disability_or_illness", "Parental disability or illness"),
        ("N4", "family_in_acute_stress", "Family in acute stress"),
        ("N5", "family_dysfunction", "Family dysfunction"),
        ("N6", "socially_unacceptable_behaviour", "Socially unacceptable behaviour"),
        ("N7", "low_income", "Low income"),
        ("N8", "absent_parenting", "Absent parenting"),
        ("N9", "cases_other_than_children_in_need", "Cases other than children in need"),
    ],
)

NO_FACTORS = "21"

ASSESSMENT_FACTOR = code_list(
    name="CIN census factor identified at the end of assessment",
    rule="cin.assessment_factor",
    source=f"{_GUIDE}, factors identified at the end of assessment",
    rows=[
        ("1A", "alcohol_misuse", "Alcohol misuse by the child"),
        ("1B", "alcohol_misuse", "Alcohol misuse by the parent(s) or carer(s)"),
        ("1C", "alcohol_misuse", "Alcohol misuse by another person in the household"),
        ("2A", "drug_misuse", "Drug misuse by the child"),
        ("2B", "drug_misuse", "Drug misuse by the parent(s) or carer(s)"),
        ("2C", "drug_misuse", "Drug misuse by another person in the household"),
        ("3A", "domestic_abuse", "Domestic abuse: the child is the subject"),
        ("3B", "domestic_abuse", "Domestic abuse: the parent(s) or carer(s) are the subject"),
        ("3C", "domestic_abuse", "Domestic abuse: another person in the household is the subject"),
        ("4A", "mental_health", "Mental health of the child"),
        ("4B", "mental_health", "Mental health of the parent(s) or carer(s)"),
        ("4C", "mental_health", "Mental health of another person in the family or household"),
        ("5A", "learning_disability", "Learning disability of the child"),
        ("5B", "learning_disability", "Learning disability of the parent(s) or carer(s)"),
        ("5C", "learning_disability", "Learning disability of another person in the household"),
        ("6A", "physical_disability_or_illness", "Physical disability or illness of the child"),
        (
            "6B",
            "physical_disability_or_illness",
            "Physical disability or illness of the parent(s) or carer(s)",
        ),
        (
            "6C",
            "physical_disability_or_illness",
            "Physical disability or illness of another person in the household",
        ),
        ("7A", "young_carer", "Young carer"),
        ("8B", "privately_fostered", "Privately fostered: overseas child who intends to return"),
        ("8C", "privately_fostered", "Privately fostered: overseas child who intends to stay"),
        ("8D", "privately_fostered", "Privately fostered: UK child in an educational placement"),
        (
            "8E",
            "privately_fostered",
            "Privately fostered: UK child in an alternative family arrangement",
        ),
        ("8F", "privately_fostered", "Privately fostered: other"),
        ("9A", "unaccompanied_asylum_seeking_child", "Unaccompanied asylum-seeking child"),
        ("10A", "missing", "Going or being missing"),
        ("11A", "child_sexual_exploitation", "Child sexual exploitation"),
        ("12A", "trafficking", "Trafficking"),
        ("13A", "gangs", "Involvement in or with gangs"),
        ("14A", "socially_unacceptable_behaviour", "Socially unacceptable behaviour"),
        ("15A", "self_harm", "Self-harm"),
        ("16A", "neglect", "Abuse or neglect: neglect"),
        ("17A", "emotional_abuse", "Abuse or neglect: emotional abuse"),
        ("18B", "physical_abuse", "Abuse or neglect: physical abuse, child on child"),
        ("18C", "physical_abuse", "Abuse or neglect: physical abuse, adult on child"),
        ("19B", "sexual_abuse", "Abuse or neglect: sexual abuse, child on child"),
        ("19C", "sexual_abuse", "Abuse or neglect: sexual abuse, adult on child"),
        ("20", "other", "Other"),
        (NO_FACTORS, "no_factors", "No factors identified (no further action)"),
        ("22A", "female_genital_mutilation", "Female genital mutilation"),
        ("23A", "abuse_linked_to_faith_or_belief", "Abuse linked to faith or belief"),
        ("24A", "child_criminal_exploitation", "Child criminal exploitation"),
    ],
)

CLOSURE_REASON = code_list(
    name="CIN census reason for closure",
    rule="cin.closure_reason",
    source=f"{_GUIDE}, reason for closure",
    rows=[
        ("RC1", "adopted", "Adopted"),
        ("RC2", "died", "Died"),
        ("RC3", "child_arrangements_order", "Child arrangements order"),
        ("RC4", "special_guardianship_order", "Special guardianship order"),
        ("RC5", "transferred_to_another_authority", "Transferred to another local authority"),
        ("RC6", "transferred_to_adult_social_care", "Transferred to adult social care"),
        (
            "RC7",
            "services_ceased",
            "Services ceased for any other reason, including no longer in need",
        ),
        (
            "RC8",
            "no_further_action_after_assessment",
            "Case closed after assessment, no further action",
        ),
        (
            "RC9",
            "early_help_after_assessment",
            "Case closed after assessment, referred to early help",
        ),
    ],
)
