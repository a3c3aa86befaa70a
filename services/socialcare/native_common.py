"""What the case system's JSON shares across referrals, assessments, looked-after episodes
and case closures: the child it is about, and codes checked against an official list.

Every model refuses fields it does not know (``extra="forbid"``): a field infoshare would
drop silently (a placement address, say) is an error the integrator sees at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from services.backbone.http import IsoDate, NhsNumber, Upn
from services.socialcare.codes import CodeList, normalise_code

RecordId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")]
"""A record's id in the case system: 1 to 64 characters, no surrounding spaces."""


class NativeModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


@dataclass(frozen=True)
class OnList:
    """Marks a code field checked against ``codes``: ``Annotated[str, OnList(codes)]``.

    The code is normalised (``" 3e "`` is ``3E``); a code not on the list is a 422 whose
    type is the list's rule and whose message names the list, never the value. OpenAPI
    shows the list as an enum."""

    codes: CodeList

    def check(self, raw: str) -> str:
        code = normalise_code(raw)
        if code not in self.codes:
            raise PydanticCustomError(
                self.codes.rule, f"not on the {self.codes.name} code list ({self.codes.source})"
            )
        return code

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "enum": list(self.codes.codes), "title": self.codes.name}


class Person(NativeModel):
    """The child. The authority's own person id is required; the NHS number and UPN are
    optional and, when present, check digit / check letter validated."""

    person_id: RecordId = Field(alias="personId", description="the authority's own person id")
    nhs_number: NhsNumber | None = Field(
        None, alias="nhsNumber", description="10 digits, check digit validated"
    )
    upn: Upn | None = Field(None, description="unique pupil number, check letter validated")
    first_name: str | None = Field(None, alias="firstName", min_length=1, max_length=100)
    last_name: str | None = Field(None, alias="lastName", min_length=1, max_length=100)
    date_of_birth: IsoDate | None = Field(None, alias="dateOfBirth")
