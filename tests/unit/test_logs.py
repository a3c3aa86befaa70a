"""Structured logs: JSON lines with the trace and span ids of the work that wrote them, and
never a personal identifier, even when a message or a library's exception quotes one."""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider

from services.backbone.identifiers import upn_problem
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


# What can stand right beside an identifier in a log line: anything but what would make it
# part of a longer number or word (a digit; for a UPN, a letter or digit too).
NEIGHBOURS = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="0123456789"), max_size=6
)
# Punctuation, symbols, separators and controls: no letter or digit.
UPN_NEIGHBOURS = st.text(
    alphabet=st.characters(codec="utf-8").filter(lambda c: not c.isalnum()), max_size=6
)


@st.composite
def nhs_as_written(draw: st.DrawFn) -> tuple[str, str]:
    """A valid NHS number as people and systems write it: run together, or 3-3-4 with spaces
    or dashes; and its bare digits."""
    nhs = draw(valid_nhs_numbers())
    sep = draw(st.sampled_from(["", " ", "-"]))
    return f"{nhs[:3]}{sep}{nhs[3:6]}{sep}{nhs[6:]}", nhs


@st.composite
def valid_upns(draw: st.DrawFn) -> str:
    """A valid UPN: a letter, eleven digits and the check letter that holds."""
    body = draw(st.sampled_from("ABCDEFGHJKLMNPQRTUVWXYZ")) + draw(
        st.text(alphabet="0123456789", min_size=11, max_size=11)
    )
    return next(body + c for c in "ABCDEFGHJKLMNPQRTUVWXYZ" if upn_problem(body + c) is None)


@given(
    written=nhs_as_written(),
    before=NEIGHBOURS,
    after=NEIGHBOURS,
    prefix=st.text(max_size=20),
)
def test_every_valid_nhs_number_is_redacted_whatever_stands_beside_it(
    written: tuple[str, str], before: str, after: str, prefix: str
) -> None:
    """``nhs:9434765919``, ``(943 476 5919)``, ``"943-476-5919"``: not only when spaces
    stand on both sides."""
    shown, digits = written
    out = redact(f"{prefix} {before}{shown}{after}")
    assert shown not in out and digits not in out


@given(upn=valid_upns(), before=UPN_NEIGHBOURS, after=UPN_NEIGHBOURS)
def test_every_valid_upn_is_redacted_whatever_stands_beside_it(
    upn: str, before: str, after: str
) -> None:
    assert upn not in redact(f"{before}{upn}{after}")


@pytest.mark.parametrize(
    "line", [f"nhs:{NHS}", f"({NHS})", f'"{NHS}"', f"[{NHS[:3]}-{NHS[3:6]}-{NHS[6:]}]"]
)
def test_the_forms_a_whitespace_only_pattern_would_miss_are_redacted(line: str) -> None:
    assert redact(line).count(REDACTED) == 1


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


def test_a_warning_is_logged_by_its_category_and_line_never_its_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every process's warnings come into its log (not raw on stderr), as a library's
    exception does: what and where, not its message, which may quote a name."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        with warnings.catch_warnings():  # restores the warnings' display after
            warnings.simplefilter("always")
            configure_logging("infoshare-x")
            said = f"input_value='Ada Lovelace', {NHS}"
            warnings.warn_explicit(said, UserWarning, "/venv/somelibrary/main.py", 42)
            line = orjson.loads(capsys.readouterr().err)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert line["logger"] == "py.warnings" and line["level"] == "warning"
    assert line["message"] == "UserWarning at /venv/somelibrary/main.py:42"
