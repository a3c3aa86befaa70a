"""Which traces are recorded: head sampling at a ratio, decided once where a trace starts.

The trace of an event starts at the agency service that accepts it; everything after (the
processor, the audit write, the delivery) follows that decision through ``traceparent``. A
delivery's own trace (a new trace, linked to the event's: see telemetry.new_trace_headers)
has no parent, so it follows its link instead: a recipient's trace is recorded exactly when
the event's is, and the link in it always leads somewhere.

Unsampled spans cost little and still carry trace ids, so an audit record names its trace
whether or not the trace was recorded.

``OTEL_TRACES_SAMPLER`` (and its ``OTEL_TRACES_SAMPLER_ARG``), when set, chooses the SDK's
own sampler instead, as everywhere in OpenTelemetry. Unset, infoshare samples
``DEFAULT_RATIO`` of traces, or ``OTEL_TRACES_SAMPLER_ARG`` of them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from services.backbone.errors import ConfigurationError

# Recording and exporting every span cost the processor about a quarter of its throughput
# (docs/benchmarks.md, "What tracing costs the processor"); a tenth of traces is meant to
# bring that under the 10% issue 18 allows. Not yet measured at this ratio.
DEFAULT_RATIO = 0.1


class FollowLinks(Sampler):
    """For a span without a parent: sampled if a span it links to is, dropped if it links
    only to unsampled ones, and as ``root`` says if it has no links."""

    def __init__(self, root: Sampler) -> None:
        self.root = root

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: trace.SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        linked = [link.context for link in links or () if link.context.is_valid]
        if not linked:
            return self.root.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )
        sampled = any(c.trace_flags.sampled for c in linked)
        return SamplingResult(
            Decision.RECORD_AND_SAMPLE if sampled else Decision.DROP, attributes, trace_state
        )

    def get_description(self) -> str:
        return f"FollowLinks{{{self.root.get_description()}}}"


def sampler_from_env() -> Sampler | None:
    """The sampler for this process's tracer provider; None when ``OTEL_TRACES_SAMPLER``
    names one (the SDK then reads it itself)."""
    if os.environ.get("OTEL_TRACES_SAMPLER", "").strip():
        return None
    return ParentBased(root=FollowLinks(TraceIdRatioBased(_ratio())))


def follows_parent() -> bool:
    """Whether this process's sampler decides as the incoming trace did: ours, or any of the
    SDK's ``parentbased_*`` (the others may record a child of an unrecorded parent)."""
    name = os.environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    return not name or name.startswith("parentbased_")


def unrecorded_parent(context: Context) -> bool:
    """Whether ``context`` holds a valid parent that was not sampled: under a sampler that
    follows the parent, no child of it is recorded, so none need be made at all (the work
    stays in the parent's trace, whose id the audit record keeps)."""
    parent = trace.get_current_span(context).get_span_context()
    return parent.is_valid and not parent.trace_flags.sampled


def _ratio() -> float:
    raw = os.environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    try:
        ratio = float(raw) if raw else DEFAULT_RATIO
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise ConfigurationError(
            f"OTEL_TRACES_SAMPLER_ARG is {raw!r}: give the share of traces to record, "
            "from 0 to 1 (0.1 records one in ten)"
        )
    return ratio


class UnpredictableIds(IdGenerator):
    """Trace and span ids from the operating system's CSPRNG. The SDK's default draws them
    from ``random`` (Mersenne Twister), whose state a recipient could rebuild from the ids
    it is sent; it could then tell which ids were drawn just before and after its own, and
    two colluding recipients could link their deliveries of one event by trace id."""

    def generate_span_id(self) -> int:
        return secrets.randbits(64) or 1

    def generate_trace_id(self) -> int:
        return secrets.randbits(128) or 1


def describe() -> str:
    """The sampling ``sampler_from_env`` gives, in words (for reports)."""
    named = os.environ.get("OTEL_TRACES_SAMPLER", "").strip()
    return f"OTEL_TRACES_SAMPLER={named}" if named else f"{_ratio():g} of traces recorded"


def unsampled_traceparent() -> list[tuple[str, bytes]]:
    """A ``traceparent`` header of a new trace that is not recorded: the sampled flag
    clear, the random flag set (W3C Trace Context Level 2; the ids are random, as the SDK
    says of its own). For a delivery whose event's trace is not recorded: the recipient
    still gets a trace of its own, at the cost of two random numbers instead of two spans."""
    ids = UnpredictableIds()
    trace_id, span_id = ids.generate_trace_id(), ids.generate_span_id()
    return [("traceparent", f"00-{trace_id:032x}-{span_id:016x}-02".encode())]
