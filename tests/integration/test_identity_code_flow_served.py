"""The code flow over real HTTP: the identity provider as the local stack serves it (its own
process, a free loopback port), a standard client (Authlib) signing the starter IG officer
in, and the services' PeopleVerifier fetching the JWKS from the server itself."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.integrations.httpx_client import OAuth2Client  # type: ignore[import-untyped]

from deploy.devstack.identity.clients import register_client
from deploy.devstack.identity.provider import IG_OFFICER, starter_logins
from deploy.devstack.identity.serve import identity_provider
from services.backbone.people import PeopleConfig, PeopleVerifier, PersonRole, Unauthenticated
from tests.unit.test_identity_code_flow import query, read_form

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Authlib on httpx

CLIENT = "audit-console"
REGISTERED = "http://127.0.0.1:9/callback"  # any loopback port: the console's is a free one
CONSOLE = "http://localhost:54321/callback"


def test_the_served_provider_signs_a_person_in_to_a_registered_client(tmp_path: Path) -> None:
    directory = tmp_path / "identity"
    with identity_provider(directory) as provider:
        register_client(directory, CLIENT, [REGISTERED])
        issuer = provider.issuer
        configuration = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
        verifier, nonce = generate_token(64), generate_token(24)
        with OAuth2Client(
            client_id=CLIENT,
            redirect_uri=CONSOLE,
            scope="openid profile",
            code_challenge_method="S256",
            token_endpoint_auth_method="none",
        ) as oauth:
            url, state = oauth.create_authorization_url(
                configuration["authorization_endpoint"], code_verifier=verifier, nonce=nonce
            )
            with httpx.Client() as browser:
                page = browser.get(url)
                form = read_form(page.text)
                fields = {
                    **form.hidden,
                    "username": IG_OFFICER,
                    "password": starter_logins(directory)[IG_OFFICER],
                }
                back = browser.post(urljoin(str(page.url), form.action), data=fields)
            assert back.status_code == 303, back.text
            location = back.headers["location"]
            assert location.startswith(CONSOLE + "?") and query(location)["state"] == state
            token = oauth.fetch_token(
                configuration["token_endpoint"],
                authorization_response=location,
                state=state,
                code_verifier=verifier,
            )
        person = PeopleVerifier(PeopleConfig(issuer=issuer, audience=CLIENT)).verify(
            token["id_token"]
        )
        assert person.subject == IG_OFFICER and person.roles == {PersonRole.IG_OFFICER}
        with pytest.raises(Unauthenticated, match="audience"):  # not a token for the APIs
            PeopleVerifier(PeopleConfig(issuer=issuer)).verify(token["access_token"])
