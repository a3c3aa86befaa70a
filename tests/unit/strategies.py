"""Hypothesis strategies and oracles shared by the property-based tests."""

from __future__ import annotations

from hypothesis import strategies as st


def check_digit(stem: str) -> int | None:
    """Independent oracle: NHS Data Dictionary modulus 11, None when no number has this stem."""
    remainder = sum(int(d) * (10 - i) for i, d in enumerate(stem)) % 11
    check = (11 - remainder) % 11
    return None if check == 10 else check


@st.composite
def valid_nhs_numbers(draw: st.DrawFn) -> str:
    """Any valid NHS number (ten ASCII digits, modulus 11 check digit)."""
    stem = draw(st.text(alphabet="0123456789", min_size=9, max_size=9))
    if check_digit(stem) is None:
        # 11 is prime, so some other last stem digit always gives a usable check digit.
        stem = next(s for s in (stem[:8] + d for d in "0123456789") if check_digit(s) is not None)
    return stem + str(check_digit(stem))
