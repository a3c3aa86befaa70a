"""The CP-IS scenario's inputs, in each agency's native format. Used by the demo and the tests.

NHS numbers are in the 999 range that NHS England reserves for testing; names are made up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Child:
    nhs_number: str
    person_id: str
    given_name: str
    family_name: str
    date_of_birth: str
    postcode: str


ON_PLAN = Child("9990000123", "NS-104233", "Maisie", "Testchild", "2016-04-09", "NS1 4AP")
NOT_ON_PLAN = Child("9990000239", "NS-104288", "Ollie", "Examplechild", "2014-11-23", "NS3 9ZD")
THIRD = Child("9990000344", "NS-104301", "Ruby", "Samplechild", "2019-07-30", "NS2 6QT")
OVERRIDE_REASON = (
    "Third attendance this month with unexplained injuries; the adult with the child was "
    "hostile, and asking for consent would put the child at risk"
)


def plan_started(
    child: Child, *, plan_id: str = "CPP-2026-0117", start_date: str = "2026-11-02"
) -> dict[str, Any]:
    """The case system's JSON for a child protection plan that has started."""
    return {
        "child": {
            "nhsNumber": child.nhs_number,
            "personId": child.person_id,
            "firstName": child.given_name,
            "lastName": child.family_name,
            "dateOfBirth": child.date_of_birth,
        },
        "plan": {"id": plan_id, "startDate": start_date, "category": "neglect"},
        "contact": {
            "team": "Northshire MASH",
            "phone": "0300 555 0142",
            "email": "mash@northshire.example",
        },
        "leadPractitioner": {"name": "Sam Worker", "role": "social worker"},
    }


def attendance_bundle(
    child: Child, *, encounter_id: str = "ED-77812", arrival: str = "2026-11-20T21:14:00Z"
) -> dict[str, Any]:
    """A FHIR R4 Bundle: an emergency attendance (Encounter, class EMER) and its Patient."""
    patient_url = f"urn:uuid:patient-{encounter_id.lower()}"
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": patient_url,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [
                        {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": child.nhs_number}
                    ],
                    "name": [{"given": [child.given_name], "family": child.family_name}],
                    "birthDate": child.date_of_birth,
                    "address": [{"postalCode": child.postcode}],
                },
            },
            {
                "fullUrl": f"urn:uuid:encounter-{encounter_id.lower()}",
                "resource": {
                    "resourceType": "Encounter",
                    "id": encounter_id,
                    "status": "arrived",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "EMER",
                        "display": "emergency",
                    },
                    "type": [
                        {
                            "coding": [
                                {
                                    "system": "http://snomed.info/sct",
                                    "code": "4525004",
                                    "display": "Emergency department patient visit",
                                }
                            ]
                        }
                    ],
                    "subject": {"reference": patient_url},
                    "period": {"start": arrival},
                    "reasonCode": [
                        {
                            "coding": [
                                {
                                    "system": "http://snomed.info/sct",
                                    "code": "417163006",
                                    "display": "Traumatic AND/OR non-traumatic injury",
                                }
                            ],
                            "text": "Bruising to left forearm, history inconsistent",
                        }
                    ],
                    "serviceProvider": {
                        "identifier": {
                            "system": "https://fhir.nhs.uk/Id/ods-organization-code",
                            "value": "RVR01",
                        },
                        "display": "Riverside General Hospital ED",
                    },
                },
            },
        ],
    }


# The scenario's children in a school's MIS attendance export, as a MIS writes it: a byte
# order mark, CRLF line ends, a blank line, columns infoshare does not use. UPNs are
# fictional with valid check letters.
_EXPORT_HEADER = (
    "UPN,Legal Surname,Legal Forename,DOB,NHS Number,Reg Group,Year,Possible Sessions,"
    "Attendance %,Authorised Absences,Unauthorised Absences,I,M,C2,G,N,O,U,/,L"
)
_EXPORT_ROWS = (
    # UPN, child, attendance figures: 88.5% and 45.9% are concerns, 97.3% is not.
    ("H999400116001", ON_PLAN, '"4T, Willow",4,148,88.5,9,8,7,2,,3,,5,,125,6'),
    ("X999400116002", NOT_ON_PLAN, '"6E, Elm",6,148,97.3,4,0,4,,,,,,,140,4'),
    ("C999400115014", THIRD, '"3S, Sycamore",3,148,45.9,30,50,20,,10,,10,40,,60,8'),
)
ATTENDANCE_PERIOD = ("2026-09-03", "2026-12-18")


def attendance_export() -> bytes:
    """The autumn term's attendance export of Oakfield Academy (two pupils of concern)."""
    lines = [_EXPORT_HEADER]
    for upn, child, figures in _EXPORT_ROWS:
        born = "/".join(reversed(child.date_of_birth.split("-")))  # dd/mm/yyyy, as MIS do
        lines.append(
            f"{upn},{child.family_name},{child.given_name},{born},{child.nhs_number},{figures}"
        )
    lines.insert(2, "")
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()
