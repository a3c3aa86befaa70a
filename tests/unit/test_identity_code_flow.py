"""The development identity provider signs a person in to a browser application with the
Authorization Code flow and PKCE (OIDC Core 3.1, RFC 7636), as a standard client drives it:
Authlib makes the authorization URL and redeems the code; the ID Token is checked by
Authlib's OIDC claim rules and by the services' own PeopleVerifier, against the JWKS the
server publishes. The server runs in process (ASGI), its clock injected."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from authlib.oidc.core import CodeIDToken  # type: ignore[import-untyped]
from fastapi import FastAPI
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from deploy.devstack.identity.clients import register_client
from deploy.devstack.identity.codes import s256
from deploy.devstack.identity.provider import IG_OFFICER, ensure_provider, starter_logins
from deploy.devstack.identity.server import create_app
from services.backbone.people import PeopleConfig, PeopleVerifier, PersonRole, Unauthenticated
from tests.clock import Clock

pytestmark = [
    # Authlib looks for httpx2 first and warns when it falls back to httpx, which this uses.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    # joserfc prefers RFC 9864's "Ed25519" name; PyJWT and the services' verifier use "EdDSA".
    pytest.mark.filterwarnings("ignore:EdDSA is deprecated"),
]

ISSUER = "http://127.0.0.1:8160"
CLIENT = "audit-console"
REDIRECT = "http://127.0.0.1:8170/callback"
CONFIGURATION = f"{ISSUER}/.well-known/openid-configuration"


@dataclass
class Provider:
    directory: Path
    clock: Clock
    app: FastAPI
    browser: httpx.AsyncClient

    def password(self, name: str = IG_OFFICER) -> str:
        return starter_logins(self.directory)[name]

    def oauth(self, **kwargs: Any) -> AsyncOAuth2Client:
        """A public client as the console is one: PKCE S256, no secret."""
        return AsyncOAuth2Client(
            client_id=kwargs.pop("client_id", CLIENT),
            redirect_uri=kwargs.pop("redirect_uri", REDIRECT),
            scope="openid profile",
            code_challenge_method="S256",
            token_endpoint_auth_method="none",
            transport=httpx.ASGITransport(app=self.app),
            **kwargs,
        )


@pytest.fixture
async def provider(tmp_path: Path) -> AsyncIterator[Provider]:
    directory = tmp_path / "identity"
    ensure_provider(directory, ISSUER)
    register_client(directory, CLIENT, [REDIRECT])
    clock = Clock(time.time())
    app = create_app(directory, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as browser:
        yield Provider(directory, clock, app, browser)


@dataclass
class Form:
    """What a page's HTML shows a browser: its form's fields and labels."""

    action: str = ""
    hidden: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, dict[str, str]] = field(default_factory=dict)  # by id
    labelled: set[str] = field(default_factory=set)  # ids a label is for
    tags: set[str] = field(default_factory=set)
    lang: str | None = None
    title: str = ""


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.form = Form()
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.form.tags.add(tag)
        self._in_title = tag == "title"
        if tag == "html":
            self.form.lang = a.get("lang")
        elif tag == "form":
            self.form.action = a.get("action", "")
        elif tag == "label":
            self.form.labelled.add(a.get("for", ""))
        elif tag == "input" and a.get("type") == "hidden":
            self.form.hidden[a["name"]] = a.get("value", "")
        elif tag == "input":
            self.form.inputs[a.get("id", "")] = a

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.form.title += data

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False


def read_form(html: str) -> Form:
    reader = _Reader()
    reader.feed(html)
    return reader.form


async def sign_in(
    browser: httpx.AsyncClient, url: str, username: str, password: str, **changed: str
) -> httpx.Response:
    """Open the login page at ``url`` and submit it as a browser would."""
    page = await browser.get(url)
    assert page.status_code == 200, page.text
    form = read_form(page.text)
    fields = {**form.hidden, "username": username, "password": password, **changed}
    return await browser.post(urljoin(str(page.url), form.action), data=fields)


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Started:
    """An authorization request a client made: its URL and the secrets it keeps."""

    url: str
    state: str
    verifier: str
    nonce: str


def start(oauth: AsyncOAuth2Client) -> Started:
    verifier, nonce = generate_token(64), generate_token(24)
    url, state = oauth.create_authorization_url(
        f"{ISSUER}/authorize", code_verifier=verifier, nonce=nonce
    )
    return Started(url, state, verifier, nonce)


async def code_for(provider: Provider, oauth: AsyncOAuth2Client) -> tuple[Started, str]:
    """A started request and the redirect back, signed in as the starter IG officer."""
    started = start(oauth)
    answer = await sign_in(provider.browser, started.url, IG_OFFICER, provider.password())
    assert answer.status_code == 303, answer.text
    return started, answer.headers["location"]


async def redeem(oauth: AsyncOAuth2Client, started: Started, location: str, **kw: Any) -> Any:
    return await oauth.fetch_token(
        f"{ISSUER}/token",
        authorization_response=location,
        state=started.state,
        code_verifier=kw.pop("code_verifier", started.verifier),
        **kw,
    )


async def verifier_for(provider: Provider, audience: str) -> PeopleVerifier:
    """The services' verifier, fed the configuration and JWKS the server answers."""
    served = {}
    for url in (CONFIGURATION, f"{ISSUER}/jwks.json"):
        served[url] = (await provider.browser.get(url)).content
    return PeopleVerifier(PeopleConfig(issuer=ISSUER, audience=audience), fetch=served.__getitem__)


async def test_a_person_signs_in_and_the_client_gets_tokens_it_can_verify(
    provider: Provider,
) -> None:
    configuration = (await provider.browser.get(CONFIGURATION)).json()
    assert configuration["authorization_endpoint"] == f"{ISSUER}/authorize"
    assert configuration["token_endpoint"] == f"{ISSUER}/token"
    assert configuration["code_challenge_methods_supported"] == ["S256"]
    async with provider.oauth() as oauth:
        started, location = await code_for(provider, oauth)
        assert location.startswith(REDIRECT + "?")
        back = query(location)
        assert back["state"] == started.state
        assert back["iss"] == ISSUER  # RFC 9207
        token = await redeem(oauth, started, location)

    assert token["token_type"] == "Bearer"
    assert token["expires_in"] > 0
    # Authlib's OIDC Core 3.1.3.7 checks, on the signature the published JWKS verifies.
    keys = KeySet.import_key_set((await provider.browser.get(f"{ISSUER}/jwks.json")).json())
    decoded = jose_jwt.decode(token["id_token"], keys, algorithms=["EdDSA"])
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={"iss": {"essential": True, "value": ISSUER}, "aud": {"value": CLIENT}},
        params={"nonce": started.nonce, "client_id": CLIENT},
    )
    claims.validate(now=int(provider.clock()))
    assert claims["nonce"] == started.nonce
    assert claims["auth_time"] == int(provider.clock())

    # Both tokens are the client's: neither is one the services' APIs accept.
    person = (await verifier_for(provider, CLIENT)).verify(token["id_token"])
    assert (person.subject, person.name) == (IG_OFFICER, "Sam Okafor")
    assert person.roles == {PersonRole.IG_OFFICER}
    services = await verifier_for(provider, "infoshare")
    for issued in (token["access_token"], token["id_token"]):
        with pytest.raises(Unauthenticated, match="audience"):
            services.verify(issued)


async def test_a_nonce_the_client_did_not_send_fails_its_check(provider: Provider) -> None:
    async with provider.oauth() as oauth:
        started, location = await code_for(provider, oauth)
        token = await redeem(oauth, started, location)
    decoded = jose_jwt.decode(
        token["id_token"],
        KeySet.import_key_set((await provider.browser.get(f"{ISSUER}/jwks.json")).json()),
        algorithms=["EdDSA"],
    )
    claims = CodeIDToken(decoded.claims, decoded.header, params={"nonce": "another"})
    with pytest.raises(Exception, match="nonce"):
        claims.validate(now=int(provider.clock()))


@pytest.mark.parametrize("who", ["wrong password", "unknown user"])
async def test_wrong_credentials_show_the_form_again_and_give_no_code(
    provider: Provider, who: str
) -> None:
    async with provider.oauth() as oauth:
        started = start(oauth)
    name, password = (
        (IG_OFFICER, provider.password() + "x")
        if who == "wrong password"
        else ("no.one", provider.password())
    )
    answer = await sign_in(provider.browser, started.url, name, password)
    assert answer.status_code == 401
    assert "location" not in answer.headers
    assert "The user name or password is wrong." in answer.text
    form = read_form(answer.text)
    assert form.hidden["state"] == started.state  # the form again, ready for another try
    assert form.inputs["username"]["value"] == name


async def test_a_code_is_used_once(provider: Provider) -> None:
    async with provider.oauth() as oauth:
        started, location = await code_for(provider, oauth)
        await redeem(oauth, started, location)
        with pytest.raises(OAuthError) as refused:
            await redeem(oauth, started, location)
    assert refused.value.error == "invalid_grant"


async def test_a_wrong_verifier_is_refused_and_spends_the_code(provider: Provider) -> None:
    async with provider.oauth() as oauth:
        started, location = await code_for(provider, oauth)
        with pytest.raises(OAuthError) as refused:
            await redeem(oauth, started, location, code_verifier=generate_token(64))
        assert refused.value.error == "invalid_grant"
        with pytest.raises(OAuthError) as again:
            await redeem(oauth, started, location)  # the right one, too late
    assert again.value.error == "invalid_grant"


async def test_the_code_is_bound_to_its_redirect_uri_and_client(provider: Provider) -> None:
    register_client(provider.directory, "other-app", ["http://127.0.0.1:8170/other"])
    async with provider.oauth() as oauth:
        started, location = await code_for(provider, oauth)
        with pytest.raises(OAuthError) as refused:
            await redeem(oauth, started, location, redirect_uri="http://127.0.0.1:8170/other")
        assert refused.value.error == "invalid_grant"
        started, location = await code_for(provider, oauth)
    async with provider.oauth(client_id="other-app") as other:
        with pytest.raises(OAuthError) as stolen:
            await redeem(other, started, location)
    assert stolen.value.error == "invalid_grant"


@pytest.mark.parametrize(("later", "accepted"), [(59.0, True), (60.0, False)])
async def test_a_code_lasts_a_minute(provider: Provider, later: float, accepted: bool) -> None:
    async with provider.oauth() as oauth:
        started, location = await code_for(provider, oauth)
        provider.clock.now += later
        if accepted:
            assert "id_token" in await redeem(oauth, started, location)
            return
        with pytest.raises(OAuthError) as refused:
            await redeem(oauth, started, location)
    assert refused.value.error == "invalid_grant"


@pytest.mark.parametrize(
    ("client_id", "redirect_uri"),
    [
        ("no-such-app", REDIRECT),
        (CLIENT, "https://elsewhere.example/callback"),
        (CLIENT, "http://127.0.0.1:8170/another-path"),
        (CLIENT, "http://10.0.0.8:8170/callback"),
        (CLIENT, ""),
    ],
)
async def test_an_unknown_client_or_redirect_uri_gets_a_page_never_a_redirect(
    provider: Provider, client_id: str, redirect_uri: str
) -> None:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid",
        "state": "s",
        "code_challenge": s256(generate_token(64)),
        "code_challenge_method": "S256",
    }
    answer = await provider.browser.get(f"/authorize?{urlencode(params)}")
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")
    assert "<form" not in answer.text


async def test_a_form_whose_redirect_uri_was_changed_is_refused(provider: Provider) -> None:
    async with provider.oauth() as oauth:
        started = start(oauth)
    answer = await sign_in(
        provider.browser,
        started.url,
        IG_OFFICER,
        provider.password(),
        redirect_uri="https://elsewhere.example/callback",
    )
    assert answer.status_code == 400
    assert "location" not in answer.headers


async def test_a_loopback_redirect_uri_may_use_any_port(provider: Provider) -> None:
    for redirect_uri in ("http://127.0.0.1:50123/callback", "http://localhost:8999/callback"):
        async with provider.oauth(redirect_uri=redirect_uri) as oauth:
            started = start(oauth)
            answer = await sign_in(provider.browser, started.url, IG_OFFICER, provider.password())
            assert answer.headers["location"].startswith(redirect_uri + "?")
            assert "id_token" in await redeem(oauth, started, answer.headers["location"])


@pytest.mark.parametrize(
    ("changed", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "invalid_request"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"prompt": "none"}, "login_required"),
    ],
)
async def test_other_bad_parameters_go_back_to_the_client_with_its_state(
    provider: Provider, changed: dict[str, str | None], error: str
) -> None:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": CLIENT,
        "redirect_uri": REDIRECT,
        "scope": "openid profile",
        "state": "the-state",
        "nonce": "n",
        "code_challenge": s256(generate_token(64)),
        "code_challenge_method": "S256",
        **changed,
    }
    sent = {k: v for k, v in params.items() if v is not None}
    answer = await provider.browser.get(f"/authorize?{urlencode(sent)}")
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?")
    assert query(location)["error"] == error
    assert query(location)["state"] == "the-state"
    assert "code" not in query(location)


async def test_the_login_page_is_labelled_self_contained_and_strictly_confined(
    provider: Provider,
) -> None:
    async with provider.oauth() as oauth:
        page = await provider.browser.get(start(oauth).url)
    form = read_form(page.text)
    assert form.lang == "en"
    assert form.title.strip()
    assert set(form.inputs) == {"username", "password"}
    assert form.labelled >= set(form.inputs)  # every visible field has its label
    assert form.inputs["password"]["type"] == "password"
    assert form.inputs["username"]["autocomplete"] == "username"
    assert not form.tags & {"script", "style", "iframe", "img"}
    assert "style=" not in page.text and "http" not in page.text.split("<form")[0]
    # The form may lead on to the client's redirect (a browser holds a form's redirects to
    # form-action), and nowhere else.
    assert page.headers["content-security-policy"] == (
        "default-src 'none'; style-src 'self'; form-action 'self' http://127.0.0.1:8170; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    assert page.headers["cache-control"] == "no-store"
    css = await provider.browser.get(urljoin(str(page.url), "login.css"))
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"grant_type": "password", "client_id": CLIENT}, "unsupported_grant_type"),
        ({"client_id": CLIENT, "code": "x"}, "invalid_request"),
        ({"grant_type": "authorization_code", "client_id": "nobody"}, "invalid_client"),
        ({"grant_type": "authorization_code", "client_id": CLIENT}, "invalid_request"),
        (
            {
                "grant_type": "authorization_code",
                "client_id": CLIENT,
                "code": "made-up",
                "redirect_uri": REDIRECT,
                "code_verifier": generate_token(64),
            },
            "invalid_grant",
        ),
    ],
)
async def test_the_token_endpoint_names_its_refusals(
    provider: Provider, fields: dict[str, str], error: str
) -> None:
    answer = await provider.browser.post("/token", data=fields)
    assert answer.status_code == 400
    assert answer.json() == {"error": error}
    assert answer.headers["cache-control"] == "no-store"


async def test_the_token_endpoint_takes_only_a_form(provider: Provider) -> None:
    answer = await provider.browser.post("/token", json={"grant_type": "authorization_code"})
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_request"}
