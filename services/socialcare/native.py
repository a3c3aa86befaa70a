"""The local authority case system's own JSON for child protection plans (camelCase)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.backbone.http import Flag, IsoDate, NhsNumber

Category = Literal["neglect", "physical_abuse", "emotional_abuse", "sexual_abuse", "multiple"]


class _Native(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Child(_Native):
    nhs_number: NhsNumber = Field(alias="nhsNumber", description="10 digits, check digit validated")
    person_id: str = Field(
        alias="personId", min_length=1, max_length=64, description="the authority's own person id"
    )
    first_name: str | None = Field(None, alias="firstName", min_length=1)
    last_name: str | None = Field(None, alias="lastName", min_length=1)
    date_of_birth: IsoDate | None = Field(None, alias="dateOfBirth")


class Contact(_Native):
    team: str = Field(min_length=1)
    phone: str = Field(min_length=5)
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$")


class Practitioner(_Native):
    name: str
    role: str


class PlanStart(_Native):
    id: str = Field(min_length=1, max_length=64)
    start_date: IsoDate = Field(alias="startDate")
    category: Category
    unborn: Flag = False


class ChildProtectionPlanStarted(_Native):
    """POST body: a child protection plan has started."""

    child: Child
    plan: PlanStart
    contact: Contact
    lead_practitioner: Practitioner | None = Field(None, alias="leadPractitioner")


class PlanEnd(_Native):
    id: str = Field(min_length=1, max_length=64)
    start_date: IsoDate | None = Field(None, alias="startDate")
    end_date: IsoDate = Field(alias="endDate")
    category: Category
    end_reason: Literal["no_longer_at_risk", "moved_authority", "looked_after", "other"] = Field(
        "other", alias="endReason"
    )


class ChildProtectionPlanEnded(_Native):
    """POST body: a child protection plan has ended."""

    child: Child
    plan: PlanEnd
    contact: Contact
