"""Structured logs: JSON lines with the trace and span ids of the work that wrote them, and
never a personal identifier, even when a message or a library's exception quotes one."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider

from services.backbone.logs import REDACTED, JsonFormatter, configure_logging, redact
from tests.unit.strategies import valid_nhs_numbers

NHS = "9434765919"  # valid check digit
UPN = "B801200005001"  # valid check letter


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("infoshare-test"))
    logger = logging.getLogger("infoshare.test.logs")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_is_json_with_the_trace_it_belongs_to(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("work") as span:
        logger.warning("relayed %d records", 3)
    logger.info("outside any span")
    inside, outside = lines(stream)
    context = span.get_span_context()
    assert inside["message"] == "relayed 3 records" and inside["level"] == "warning"
    assert inside["service"] == "infoshare-test" and inside["logger"] == "infoshare.test.logs"
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in outside


def test_identifiers_are_redacted_and_exception_messages_never_written(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.error("bad record for %s / %s", NHS[:3] + " " + NHS[3:6] + " " + NHS[6:], UPN)
    try:
        raise ValueError(f"the library quoted {NHS}")
    except ValueError:
        logger.exception("decoding failed")
    text = stream.getvalue()
    assert NHS not in text and UPN not in text and NHS[6:] not in text
    first, second = lines(stream)
    assert first["message"] == f"bad record for {REDACTED} / {REDACTED}"
    assert second["error"] == "ValueError" and "quoted" not in text
    assert any("test_logs.py" in str(f) for f in second["frames"])  # type: ignore[attr-defined]


def test_numbers_that_are_not_identifiers_stay() -> None:
    assert redact("offset 1234567890 of partition 3") == "offset 1234567890 of partition 3"
    assert redact("B801200005002") == "B801200005002"  # the check letter does not hold


@given(nhs=valid_nhs_numbers(), before=st.text(max_size=20), after=st.text(max_size=20))
def test_every_valid_nhs_number_is_redacted(nhs: str, before: str, after: str) -> None:
    text = f"{before} {nhs} {after}"
    assert nhs not in redact(text)


def test_configure_logging_writes_json_or_redacted_text(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("infoshare-x")
        logging.getLogger("a").warning("child %s", NHS)
        assert orjson.loads(capsys.readouterr().err)["message"] == f"child {REDACTED}"
        monkeypatch.setenv("INFOSHARE_LOG_FORMAT", "text")
        configure_logging("infoshare-x")
        logging.getLogger("a").warning("child %s", NHS)
        out = capsys.readouterr().err
        assert REDACTED in out and NHS not in out and not out.startswith("{")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
