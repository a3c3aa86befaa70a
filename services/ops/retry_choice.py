"""Which dead letters ``infoshare dlq retry`` may re-publish, and to where: only to a topic
the letter's stage reads, so a forged ``dlq_topic`` can never land a record on a delivery
topic."""

from __future__ import annotations

from collections.abc import Sequence

from services.backbone.deadletter import DeadLetter
from services.backbone.topics import Topics
from services.ops.deadletters import Stage

OWNED_ELSEWHERE = {
    Stage.DELIVERY: (
        "dead letters of the delivery stage are resent by the delivery service, which owns "
        "redelivery and event numbers: POST /subscriptions/{id}/resend on it"
    ),
    Stage.OUTBOX: (
        "dead letters of the outbox stage are records the broker refused for good when an "
        "agency's relay published them: the agency sends them again once the cause is fixed"
    ),
}


class SelectionError(ValueError):
    """The dead letters asked for cannot all be retried; nothing is published."""


def origin_problem(letter: DeadLetter, topics: Topics) -> str | None:
    """Why ``letter`` cannot go back where it came from, or None if it can."""
    origin = letter.origin
    if origin is None or origin.partition is None or origin.offset is None:
        return "its dlq_topic/dlq_partition/dlq_offset headers do not name an origin"
    if letter.stage == Stage.PROCESSOR and origin.topic.startswith(topics.source("")):
        return None
    if letter.stage == Stage.AUDIT and origin.topic in (topics.audit, topics.audit_activity):
        return None
    return f"its origin {origin.topic} is not a topic the {letter.stage} stage reads"


def select(
    letters: Sequence[DeadLetter],
    *,
    topics: Topics,
    offsets: Sequence[int],
    everything: bool,
    reason_contains: str | None = None,
    partition: int = 0,
) -> tuple[list[DeadLetter], list[tuple[DeadLetter, str]]]:
    """The dead letters to retry, and those passed over with why. Named offsets must all
    exist and be retryable (SelectionError otherwise); ``--all`` passes over what is not."""
    if everything == bool(offsets):
        raise SelectionError("name the dead letters' offsets or give --all (not both)")
    if everything:
        candidates = list(letters)
    else:
        by_offset = {d.offset: d for d in letters if d.partition == partition}
        missing = sorted({o for o in offsets if o not in by_offset})
        if missing:
            raise SelectionError(f"no dead letter at offset(s) {', '.join(map(str, missing))}")
        candidates = [by_offset[o] for o in dict.fromkeys(offsets)]
    chosen: list[DeadLetter] = []
    passed: list[tuple[DeadLetter, str]] = []
    for letter in candidates:
        reason = letter.reason or ""
        problem = origin_problem(letter, topics)
        if reason_contains and reason_contains.casefold() not in reason.casefold():
            passed.append((letter, f"its reason does not contain {reason_contains!r}"))
        elif problem and not everything:
            raise SelectionError(f"{letter.where} cannot be retried: {problem}")
        elif problem:
            passed.append((letter, problem))
        else:
            chosen.append(letter)
    return chosen, passed
