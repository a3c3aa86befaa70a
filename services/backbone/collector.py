"""How often the garbage collector looks at young objects, in a process that reads records
in batches: a batch's objects (none in a cycle; reference counting frees them) lived through
dozens of Python's default young collections (every 700 allocations), each walking what the
batch had made so far. Startup's objects are frozen out of its reach beforehand
(services/ops/components.py)."""

from __future__ import annotations

import gc

# Allocations between young collections. In the audit service a batch of 5,000 records (ten
# objects each) lived through some seventy, a fifth of the ingest time; in the delivery
# service collections took about 5% of its CPU pushing webhooks.
YOUNG_COLLECTION_EVERY = 100_000


def collect_less_often() -> None:
    """Collect the young generation every ``YOUNG_COLLECTION_EVERY`` allocations; the older
    generations as Python's defaults say."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)
