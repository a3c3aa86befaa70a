"""Generalisations and masks: coarser values that still serve the purpose. Pure functions."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from consent.core.model import Generalisation

_POSTCODE = re.compile(r"^(([A-Z]{1,2})[0-9][A-Z0-9]?)\s*[0-9][A-Z]{2}$")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
# Bands follow the stages services plan for: early years, primary, secondary, 16-17, adult.
AGE_BANDS = ((0, 4, "0-4"), (5, 10, "5-10"), (11, 15, "11-15"), (16, 17, "16-17"))
MASK = "[masked]"


class TransformError(ValueError):
    """A value cannot be transformed as the rule asks (e.g. a malformed date)."""


def _date(text: str, to: Generalisation) -> date:
    match = _DATE.match(text)
    if not match:
        raise TransformError(f"cannot generalise a non-date value to {to.value}")
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise TransformError(f"cannot generalise an impossible date to {to.value}") from None


def age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def generalise(value: Any, to: Generalisation, *, on: date) -> str:
    """Coarsen a date to its year, month or the age band on ``on``; a UK postcode to its
    district (outward code, ``NS1``) or area (``NS``)."""
    text = str(value).strip()
    if to is Generalisation.YEAR:
        return f"{_date(text, to).year:04d}"
    if to is Generalisation.MONTH:
        moment = _date(text, to)
        return f"{moment.year:04d}-{moment.month:02d}"
    if to is Generalisation.AGE_BAND:
        age = age_on(_date(text, to), on)
        if age < 0:
            raise TransformError("cannot give an age band for a date after the event")
        return next((band for low, high, band in AGE_BANDS if low <= age <= high), "18+")
    match = _POSTCODE.match(text.upper())
    if not match:
        raise TransformError("cannot generalise a malformed postcode")
    return match[1] if to is Generalisation.POSTCODE_DISTRICT else match[2]


def mask(value: Any) -> str:
    """The recipient learns that the field is there, never its value nor its length."""
    return MASK
