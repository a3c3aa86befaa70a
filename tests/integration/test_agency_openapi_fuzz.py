"""Each agency service against its own OpenAPI document (schemathesis): whatever a client
sends, valid or not, with this agency's key, another agency's or none, the answer is never
a 5xx, its status code is one the operation documents, and its content type, headers and
body are the ones documented for that status; input that breaks the document is refused,
and a route that says it needs a key does. (The other services: test_openapi_fuzz.py.)

No Kafka: the app's background tasks (outbox relay, inbox reader) are not started; the
outbox is a SQLite database of the test's own. Each run sends requests of its own, from a
new seed it prints and names in any failure; INFOSHARE_FUZZ_SEED=<seed> replays a run's."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import schemathesis

from tests.integration.agency_helpers import SAMPLES, SERVICES, Service, settings_for, token
from tests.integration.fuzz_helpers import CHECKS, api_schema, fuzz_operations, without_lifespan

# Requests per operation: most with the agency's own key, which reaches the routes' rules;
# without it every secured operation must stop at 401 or 403 whatever else is sent.
CALLERS = {"its own key": 30, "another agency's key": 5, "no key": 5}

pytestmark = pytest.mark.parametrize("service", list(SERVICES.values()), ids=list(SERVICES))


def agency_schema(
    service: Service, *, keyring_path: Path, tmp_path: Path, bearer: str | None
) -> schemathesis.BaseSchema:
    """The service's OpenAPI document, from the app itself; ``bearer`` is the key sent as
    its AgencyKey scheme."""
    app = service.factory(
        settings_for(
            service, keyring_path=keyring_path, database_url=f"sqlite:///{tmp_path}/outbox.db"
        )
    )
    return api_schema(without_lifespan(app), bearers={"AgencyKey": bearer} if bearer else None)


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
    schema = agency_schema(service, keyring_path=keyring_path, tmp_path=tmp_path, bearer=key)
    operations = fuzz_operations(schema, examples=CALLERS[caller], subtests=subtests)
    assert len(operations) >= 4, operations


def test_every_native_sample_is_accepted_as_documented(
    service: Service, keyring_path: Path, tmp_path: Path, subtests: pytest.Subtests
) -> None:
    """The generated requests rarely pass the rules no schema states (check digits, FHIR),
    so the 202 answers are checked with the sample files each agency's systems send."""
    key = token(keyring_path, service.agency)
    schema = agency_schema(service, keyring_path=keyring_path, tmp_path=tmp_path, bearer=key)
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
