"""Run at the start of every Python process the test suite starts (``tests/fixed_clock.py``
puts this directory on their PYTHONPATH): the suite's fixed date, INFOSHARE_TEST_TODAY, is
the day protocols are judged on there too. Nothing else of the process is touched."""

import os
from datetime import date

_DAY = os.environ.get("INFOSHARE_TEST_TODAY")
if _DAY:
    from consent.core import clock

    _FIXED = date.fromisoformat(_DAY)
    clock.today = lambda: _FIXED
