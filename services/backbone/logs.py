"""Structured logs: one JSON object per line, with the trace and span ids of the work that
wrote it, and never a personal identifier.

Code in infoshare logs ids, types and counts, never values. As a second line of defence,
every line is scanned before it is written: anything shaped like an NHS number whose check
digit holds, or like a UPN whose check letter holds, is replaced by ``[redacted]``, and so
is an exception's message (a library's message may quote what it was given): only its
type and the frames are kept. Python's warnings come into the same log, by their category
and the line that raised them, for the same reason without their text.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import traceback
import warnings
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from opentelemetry import trace

from services.backbone.identifiers import nhs_number_problem, upn_problem

REDACTED = "[redacted]"
# Ten digits, possibly spaced 3-3-4 as people write them; a UPN's 13 characters.
_NHS_LIKE = re.compile(r"(?<![0-9])(?:[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4})(?![0-9])")
_UPN_LIKE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z][0-9]{11}[0-9A-Za-z](?![A-Za-z0-9])")


def redact(text: str) -> str:
    """``text`` with every valid NHS number and UPN replaced by ``[redacted]``."""
    text = _NHS_LIKE.sub(lambda m: REDACTED if nhs_number_problem(m[0]) is None else m[0], text)
    return _UPN_LIKE.sub(lambda m: REDACTED if upn_problem(m[0]) is None else m[0], text)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            doc["trace_id"] = format(span.trace_id, "032x")
            doc["span_id"] = format(span.span_id, "016x")
        if record.exc_info and record.exc_info[0] is not None:
            doc["error"] = record.exc_info[0].__name__
            frames = traceback.extract_tb(record.exc_info[2])
            doc["frames"] = [f"{f.filename}:{f.lineno} {f.name}" for f in frames]
        return orjson.dumps(doc).decode()


class _RedactingText(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text
        if record.exc_info and record.exc_info[0] is not None:
            record.msg = f"{record.getMessage()} ({record.exc_info[0].__name__})"
            record.args = None
            record.exc_info, record.exc_text = None, None
        try:
            return redact(super().format(record))
        finally:
            record.exc_info, record.exc_text = saved


def configure_logging(service: str, *, level: int = logging.INFO) -> None:
    """Log to stderr as JSON lines (``INFOSHARE_LOG_FORMAT=text`` for people reading a
    terminal: the same redaction, one line per record)."""
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("INFOSHARE_LOG_FORMAT", "json").strip().lower() == "text":
        handler.setFormatter(_RedactingText("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(JsonFormatter(service))
    handler.set_name(_HANDLER + service)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    warnings.showwarning = _logged_warning


def _logged_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A warning as a log line: its category and the line that raised it. Not its text: a
    library's warning may quote a value it was given (pydantic's serialisation warnings
    name the input), as an exception's message may, and a name is no pattern to redact."""
    logging.getLogger("py.warnings").warning("%s at %s:%d", category.__name__, filename, lineno)


_HANDLER = "infoshare-logs:"


def configured_service() -> str | None:
    """The service ``configure_logging`` set this process's logs up for, if it did: a
    worker process it starts logs as the same service."""
    for handler in logging.getLogger().handlers:
        if handler.name and handler.name.startswith(_HANDLER):
            return handler.name.removeprefix(_HANDLER)
    return None
