"""The HTTP edge of the CSV uploads: content type, size cap, and their query parameters."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from services.agency.publish import Accepted
from services.education.attendance import DEFAULT_THRESHOLD
from services.education.csv_export import MAX_BYTES, too_large_bytes
from services.education.native import DSL_ROLE, EMAIL, URN, DslContact, Period, School

CSV_BODY: dict[str, Any] = {
    "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}
}
UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"description": "Over 5 MB or 20,000 rows: nothing read, nothing published"},
    415: {"description": "The body is not `Content-Type: text/csv`"},
    422: {
        "description": "A row, column or query parameter cannot be used: `loc` names the row "
        "(its line in the file) and the column, never the value; nothing is published"
    },
}


async def read_csv_body(request: Request) -> bytes:
    """The raw CSV body: 415 unless ``text/csv``; 413 past 5 MB (by its declared length
    before reading a byte, else once read)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "text/csv":
        raise HTTPException(415, detail="send the export as the body, Content-Type: text/csv")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BYTES:
        raise too_large_bytes()
    body = await request.body()
    if len(body) > MAX_BYTES:
        raise too_large_bytes()
    return body


class ExclusionsUploadAccepted(Accepted):
    rows_read: int = Field(description="data rows in the export (blank lines not counted)")
    events_published: int


class AttendanceUploadAccepted(ExclusionsUploadAccepted):
    rows_at_or_below_threshold: int = Field(
        description="rows whose attendance is at or below the threshold: each one an event"
    )
    threshold: float


class SchoolQuery(BaseModel):
    """Who is sending: the school's URN and its DSL, whom recipients contact. Whitespace is
    stripped before the lengths are checked, as the native records it builds strip it (a
    name of only a carriage return is no name: 422, never a 500 further in)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    urn: str = Field(pattern=URN, description="the school's DfE unique reference number")
    dsl_name: str = Field(min_length=1, max_length=100, description="the DSL's name")
    dsl_role: str = Field(DSL_ROLE, min_length=2, max_length=80)
    dsl_phone: str = Field(min_length=5, max_length=32, description="the DSL's phone number")
    dsl_email: str | None = Field(None, pattern=EMAIL, max_length=254)

    def school(self) -> School:
        dsl = DslContact(
            name=self.dsl_name, role=self.dsl_role, phone=self.dsl_phone, email=self.dsl_email
        )
        return School(urn=self.urn, dsl=dsl)


class AttendanceUploadQuery(SchoolQuery):
    period_start: date = Field(description="first day of the period the export covers")
    period_end: date = Field(description="last day of the period the export covers")
    threshold: float = Field(
        DEFAULT_THRESHOLD,
        gt=0,
        le=100,
        description="a row gives concern when attendance is at or below this percentage "
        "(90: DfE persistent absence, 10% or more of possible sessions missed)",
    )

    @model_validator(mode="after")
    def _in_order(self) -> AttendanceUploadQuery:
        if self.period_end < self.period_start:
            raise PydanticCustomError("period.order", "period_end is before period_start")
        return self

    def period(self) -> Period:
        return Period(start=self.period_start, end=self.period_end)
