"""Each agency service against its own OpenAPI document (schemathesis): whatever a client
sends, valid or not, with this agency's key, another agency's or none, the answer is never
a 5xx, its status code is one the operation documents, and its content type, headers and
body are the ones documented for that status; input that breaks the document is refused,
and a route that says it needs a key does.

No Kafka: the app's background tasks (outbox relay, inbox reader) are not started; the
outbox is a SQLite database of the test's own. Generation is derandomised, so CI and a
laptop run the same requests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.agency_helpers import SAMPLES, SERVICES, Service, settings_for, token

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
FUZZ = settings(deadline=None, derandomize=True, database=None)
# Requests per operation: most with the agency's own key, which reaches the routes' rules;
# without it every secured operation must stop at 401 or 403 whatever else is sent.
CALLERS = {"its own key": 30, "another agency's key": 5, "no key": 5}

pytestmark = pytest.mark.parametrize("service", list(SERVICES.values()), ids=list(SERVICES))


def without_lifespan(app: ASGIApp) -> ASGIApp:
    """The app's routes without its lifespan, which would start the Kafka relay and inbox
    reader (schemathesis's ASGI client enters an app's lifespan before its first request)."""

    async def routes_only(scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})

    return routes_only


def api_schema(
    service: Service, *, keyring_path: Path, tmp_path: Path, bearer: str | None
) -> schemathesis.BaseSchema:
    """The service's OpenAPI document, from the app itself; ``bearer`` is the key sent as
    its HTTPBearer scheme (schemathesis leaves it out of the requests that test its
    absence)."""
    app = service.factory(
        settings_for(
            service, keyring_path=keyring_path, database_url=f"sqlite:///{tmp_path}/outbox.db"
        )
    )
    auth = {"auth": {"openapi": {"HTTPBearer": {"bearer": bearer}}}} if bearer else {}
    config = schemathesis.Config.from_dict(auth)
    return schemathesis.openapi.from_asgi("/openapi.json", without_lifespan(app), config=config)


def caller_key(caller: str, service: Service, keyring_path: Path) -> str | None:
    if caller == "no key":
        return None
    if caller == "its own key":
        return token(keyring_path, service.agency)
    other = next(s for s in SERVICES.values() if s.agency != service.agency)
    return token(keyring_path, other.agency)


@pytest.mark.parametrize("caller", list(CALLERS))
def test_every_answer_is_one_the_document_gives(
    service: Service, caller: str, keyring_path: Path, tmp_path: Path, subtests: pytest.Subtests
) -> None:
    key = caller_key(caller, service, keyring_path)
    schema = api_schema(service, keyring_path=keyring_path, tmp_path=tmp_path, bearer=key)
    operations = [operation for methods in schema.values() for operation in methods.values()]
    assert len(operations) >= 4, [op.label for op in operations]
    for operation in operations:
        requests = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @settings(FUZZ, max_examples=CALLERS[caller])
        @given(case=requests)
        def answers_as_documented(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(checks=CHECKS)

        with subtests.test(operation.label):
            answers_as_documented()


def test_every_native_sample_is_accepted_as_documented(
    service: Service, keyring_path: Path, tmp_path: Path, subtests: pytest.Subtests
) -> None:
    """The generated requests rarely pass the rules no schema states (check digits, FHIR),
    so the 202 answers are checked with the sample files each agency's systems send."""
    key = token(keyring_path, service.agency)
    schema = api_schema(service, keyring_path=keyring_path, tmp_path=tmp_path, bearer=key)
    for sample, _events in SAMPLES[service.name]:
        path, _, query = sample.path.partition("?")
        case = schema[path]["POST"].Case(
            query=dict(parse_qsl(query)),
            body=sample.body,
            media_type=sample.content_type,
            headers={"Authorization": f"Bearer {key}"},
        )
        with subtests.test(sample.path):
            answer = case.call_and_validate(checks=CHECKS)
            assert answer.status_code == 202, answer.text
