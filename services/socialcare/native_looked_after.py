"""The case system's JSON for a period of being looked after (camelCase), started or ended.

An *episode* here is the period of care CP-IS flags: from the day the child becomes
looked after to the day they stop. SSDA903 splits a period into episodes at every change
of placement or legal status (reason X1); those changes are not events here.

Where the child is placed is never accepted: no model has an address or postcode field,
and every model refuses fields it does not know, so a case system that sends one gets a
422 naming the field (never its value) and nothing is published.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from services.backbone.http import IsoDate
from services.socialcare.codes import ssda903
from services.socialcare.native import Contact
from services.socialcare.native_common import NativeModel, OnList, Person, RecordId

LegalStatus = Annotated[str, OnList(ssda903.LEGAL_STATUS)]
PlacementType = Annotated[str, OnList(ssda903.PLACEMENT)]
ReasonEnded = Annotated[str, OnList(ssda903.REASON_EPISODE_CEASED)]


class EpisodeStart(NativeModel):
    id: RecordId
    start_date: IsoDate = Field(alias="startDate")
    legal_status: LegalStatus = Field(alias="legalStatus", description="SSDA903 legal status")
    placement_type: PlacementType = Field(
        alias="placementType", description="SSDA903 placement type (never where it is)"
    )


class LookedAfterStarted(NativeModel):
    """POST body: a child has become looked after."""

    child: Person
    episode: EpisodeStart
    contact: Contact


class EpisodeEnd(NativeModel):
    id: RecordId
    start_date: IsoDate | None = Field(None, alias="startDate")
    end_date: IsoDate = Field(alias="endDate")
    reason_ended: ReasonEnded = Field(
        alias="reasonEnded", description="SSDA903 reason episode ceased (REC)"
    )


class LookedAfterEnded(NativeModel):
    """POST body: a child has stopped being looked after."""

    child: Person
    episode: EpisodeEnd
    contact: Contact
