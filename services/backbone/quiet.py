"""Running a command's Kafka work without aiokafka's per-attempt log lines: a command says
once, in words, what went wrong."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_quietly(work: Coroutine[Any, Any, T]) -> T:
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        return asyncio.run(work)
    finally:
        quiet.setLevel(level)
