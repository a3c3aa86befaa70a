"""A service against its own OpenAPI document (schemathesis), in process through its ASGI
app: what the agency services' fuzz test and the other services' share.

Each run sends requests of its own: generation starts from a new seed every time (so runs
together try far more than any one does), printed before the requests are sent and named in
any failure. ``INFOSHARE_FUZZ_SEED=<seed>`` replays a run's requests exactly."""

from __future__ import annotations

import os
import secrets
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any

import pytest
import schemathesis
from hypothesis import given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]

# Not positive_data_acceptance: a request the document allows may still be refused (422),
# because no JSON Schema says an NHS number's check digit, a UPN's check letter, that a
# plan ends after it starts, what a FHIR resource must hold or which columns a CSV has.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]
# No example database: what a run sends is its seed's, and nothing else's.
FUZZ = settings(deadline=None, database=None)
SEED_VARIABLE = "INFOSHARE_FUZZ_SEED"


def fuzz_seed() -> int:
    """The seed requests are generated from: ``INFOSHARE_FUZZ_SEED`` to replay a run, else a
    new one."""
    given_seed = os.environ.get(SEED_VARIABLE, "").strip()
    return int(given_seed) if given_seed else secrets.randbits(64)


def without_lifespan(app: ASGIApp) -> ASGIApp:
    """The app's routes without its lifespan, which would start its Kafka tasks
    (schemathesis's ASGI client enters an app's lifespan before its first request)."""

    async def routes_only(scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})

    return routes_only


def api_schema(
    app: ASGIApp, *, bearers: Mapping[str, str] | None = None
) -> schemathesis.BaseSchema:
    """The app's OpenAPI document, from the app itself. ``bearers``: the token sent for each
    security scheme named (schemathesis leaves it out of the requests that test its
    absence)."""
    config: dict[str, Any] = {}
    if bearers:
        config["auth"] = {"openapi": {name: {"bearer": t} for name, t in bearers.items()}}
    return schemathesis.openapi.from_asgi(
        "/openapi.json", app, config=schemathesis.Config.from_dict(config)
    )


def fuzz_operations(
    schema: schemathesis.BaseSchema,
    *,
    examples: int,
    subtests: pytest.Subtests,
    checks: Sequence[CheckFunction] = CHECKS,
    path_parameters: Mapping[str, str] | None = None,
) -> dict[str, set[int]]:
    """Send ``examples`` generated requests, valid and not, to each operation (deletions
    last, so the others reach what they would delete) and check each answer; the statuses
    each operation answered, by its label. ``path_parameters``: values for the path
    parameters named, so that requests reach what exists, not only ids nobody holds."""
    operations = [operation for methods in schema.values() for operation in methods.values()]
    operations.sort(key=lambda operation: operation.method.upper() == "DELETE")
    answered: dict[str, set[int]] = {}
    run_seed = fuzz_seed()
    replay = f"{SEED_VARIABLE}={run_seed}"
    print(f"fuzzing {len(operations)} operations from seed {run_seed} (replay: {replay})")
    for operation in operations:
        seen = answered.setdefault(operation.label, set())
        with subtests.test(operation.label):
            fixed = {
                p.name: (path_parameters or {})[p.name]
                for p in operation.path_parameters
                if p.name in (path_parameters or {})
            }
            fuzzer = _fuzzer(
                operation,
                examples=examples,
                checks=checks,
                seen=seen,
                fixed=fixed,
                from_seed=run_seed,
            )
            try:
                fuzzer()
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis's failures: a group
                exc.add_note(f"the requests came from seed {run_seed}: replay them with {replay}")
                raise
    return answered


def _fuzzer(
    operation: Any,
    *,
    examples: int,
    checks: Sequence[CheckFunction],
    seen: set[int],
    fixed: dict[str, str],
    from_seed: int,
) -> Callable[[], None]:
    path = {"path_parameters": fixed} if fixed else {}
    requests = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE, **path),
        operation.as_strategy(GenerationMode.NEGATIVE, **path),
    )

    @seed(from_seed)
    @settings(FUZZ, max_examples=examples)
    @given(case=requests)
    def answers_as_documented(case: schemathesis.Case[Any]) -> None:
        seen.add(case.call_and_validate(checks=list(checks)).status_code)

    return answers_as_documented
