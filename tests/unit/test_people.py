"""Named people: a token is accepted only when signed by the issuer's key, from that issuer,
for this audience, unexpired; a person without the route's role is refused. Tokens come from
the embedded identity provider (the one `infoshare users token` uses)."""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.error
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import HTTPException

from deploy.devstack.identity.provider import DevIdentityProvider
from services.backbone.people import (
    JWKS_LIFESPAN_S,
    RETRY_DISCOVERY_S,
    STALE_JWKS_S,
    PeopleConfig,
    PeopleVerifier,
    PersonRole,
    Unauthenticated,
    discover_jwks_url,
)
from services.backbone.people_http import person_of_async as person_of

ISSUER = "http://127.0.0.1:8160"


class Served:
    """The provider's OpenID configuration and JWKS, as its server answers them (without a
    socket): a ``fetch`` for the verifier, noting what it was asked; ``down`` answers nothing."""

    def __init__(self, provider: DevIdentityProvider) -> None:
        self.provider = provider
        self.asked: list[str] = []
        self.down = False

    def jwks(self) -> Any:
        return self.provider.jwks()

    def __call__(self, url: str) -> bytes:
        self.asked.append(url)
        if self.down:
            raise urllib.error.URLError(ConnectionRefusedError("connection refused"))
        if url == f"{ISSUER}/.well-known/openid-configuration":
            return orjson.dumps(self.provider.openid_configuration())
        assert url == f"{ISSUER}/jwks.json"
        return orjson.dumps(self.jwks())


@pytest.fixture
def idp(tmp_path: Path) -> DevIdentityProvider:
    provider = DevIdentityProvider(tmp_path / "identity")
    provider.create(ISSUER)
    provider.add_user("asha.patel", [PersonRole.PRACTITIONER], "Asha Patel")
    provider.add_user("ig.lead", [PersonRole.IG_OFFICER], "Jo Lead")
    return provider


def _verifier(idp: DevIdentityProvider, **config: Any) -> PeopleVerifier:
    return PeopleVerifier(PeopleConfig(issuer=ISSUER, **config), fetch=Served(idp))


def test_a_valid_token_names_the_person_and_their_roles(idp: DevIdentityProvider) -> None:
    person = _verifier(idp).verify(idp.token("asha.patel"))
    assert (person.subject, person.name) == ("asha.patel", "Asha Patel")
    assert person.roles == {PersonRole.PRACTITIONER}
    assert person.actor == "Asha Patel <asha.patel>"


def _claims(idp: DevIdentityProvider, **changed: Any) -> dict[str, Any]:
    claims = jwt.decode(idp.token("asha.patel"), options={"verify_signature": False})
    return {**claims, **changed}


def _signed(idp: DevIdentityProvider, claims: dict[str, Any], key: Any = None) -> str:
    kid, own = idp._key()
    return jwt.encode(claims, key or own, algorithm="EdDSA", headers={"kid": kid})


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"iss": "https://elsewhere.example"}, "another issuer"),
        ({"aud": "someone-else"}, "not for this audience"),
        ({"exp": int(time.time()) - 120}, "expired"),
    ],
)
def test_wrong_issuer_audience_or_expiry_is_refused(
    idp: DevIdentityProvider, change: dict[str, Any], said: str
) -> None:
    with pytest.raises(Unauthenticated, match=said):
        _verifier(idp).verify(_signed(idp, _claims(idp, **change)))


def test_a_token_signed_by_another_key_is_refused(idp: DevIdentityProvider) -> None:
    forged = _signed(idp, _claims(idp), key=Ed25519PrivateKey.generate())
    with pytest.raises(Unauthenticated, match="InvalidSignatureError"):
        _verifier(idp).verify(forged)


def test_a_token_made_with_the_public_key_as_an_hmac_secret_is_refused(
    idp: DevIdentityProvider,
) -> None:
    public = idp.jwks()["keys"][0]["x"]
    kid = idp.jwks()["keys"][0]["kid"]
    confused = jwt.encode(_claims(idp), public, algorithm="HS256", headers={"kid": kid})
    with pytest.raises(Unauthenticated):
        _verifier(idp).verify(confused)


def test_a_token_without_a_subject_or_expiry_is_refused(idp: DevIdentityProvider) -> None:
    for missing in ("sub", "exp"):
        claims = {k: v for k, v in _claims(idp).items() if k != missing}
        with pytest.raises(Unauthenticated, match="MissingRequiredClaimError"):
            _verifier(idp).verify(_signed(idp, claims))


def test_the_route_answers_401_without_a_valid_token_and_403_without_the_role(
    idp: DevIdentityProvider,
) -> None:
    verifier = _verifier(idp)

    def status(authorization: str | None, role: PersonRole) -> int:
        try:
            asyncio.run(person_of(verifier, authorization, role))
        except HTTPException as exc:
            assert "asha" not in str(exc.detail)  # never a claim's value
            return exc.status_code
        return 200

    practitioner = f"Bearer {idp.token('asha.patel')}"
    assert status(practitioner, PersonRole.PRACTITIONER) == 200
    assert status(practitioner, PersonRole.IG_OFFICER) == 403
    assert status(None, PersonRole.PRACTITIONER) == 401
    assert status("Bearer not.a.token", PersonRole.PRACTITIONER) == 401
    expired = _signed(idp, _claims(idp, exp=int(time.time()) - 120))
    assert status(f"Bearer {expired}", PersonRole.PRACTITIONER) == 401


def test_roles_can_come_from_a_nested_claim(idp: DevIdentityProvider) -> None:
    claims = _claims(idp, realm_access={"roles": ["ig_officer", "offline_access"]})
    token = _signed(idp, claims)
    person = _verifier(idp, roles_claim="realm_access.roles").verify(token)
    assert person.roles == {PersonRole.IG_OFFICER}


def test_the_jwks_is_found_through_the_issuers_openid_configuration(
    idp: DevIdentityProvider,
) -> None:
    def fetch(url: str) -> bytes:
        assert url == f"{ISSUER}/.well-known/openid-configuration"
        return orjson.dumps(idp.openid_configuration())

    assert discover_jwks_url(ISSUER, fetch) == f"{ISSUER}/jwks.json"
    with pytest.raises(Unauthenticated):
        discover_jwks_url(ISSUER, lambda _u: b"{}")


def test_a_name_the_person_can_edit_never_hides_or_spells_their_subject(
    idp: DevIdentityProvider,
) -> None:
    spoof = "Sam Okafor <sam.okafor>" + " " * 110 + "\x00"
    token = _signed(idp, _claims(idp, name=spoof))
    actor = _verifier(idp).verify(token).actor
    assert actor.endswith(" <asha.patel>") and len(actor) <= 128  # her own subject, whole
    assert "<sam.okafor>" not in actor and "\x00" not in actor
    with pytest.raises(Unauthenticated, match="subject"):
        _verifier(idp).verify(_signed(idp, _claims(idp, sub="x" * 101)))


def test_discovery_refuses_another_issuers_document_and_a_plain_http_jwks(
    idp: DevIdentityProvider,
) -> None:
    document = idp.openid_configuration()
    for changed in ({"issuer": "https://elsewhere.example"}, {"jwks_uri": "http://x.example/j"}):
        body = orjson.dumps({**document, **changed})

        def fetch(_url: str, body: bytes = body) -> bytes:
            return body

        with pytest.raises(Unauthenticated):
            discover_jwks_url(ISSUER, fetch)


def test_an_issuer_with_no_usable_key_is_a_refusal_not_a_crash(idp: DevIdentityProvider) -> None:
    class Empty(Served):
        def jwks(self) -> Any:
            return {"keys": []}

    verifier = PeopleVerifier(PeopleConfig(issuer=ISSUER), fetch=Empty(idp))
    with pytest.raises(Unauthenticated):
        verifier.verify(idp.token("asha.patel"))


def test_an_unreachable_issuer_is_asked_once_per_half_minute_and_junk_never_asks(
    idp: DevIdentityProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.backbone import people as module

    asked: list[str] = []
    now = [0.0]

    def unreachable(url: str) -> bytes:
        asked.append(url)
        raise OSError("connection refused")

    monkeypatch.setattr(module, "_fetch", unreachable)
    verifier = PeopleVerifier(PeopleConfig(issuer=ISSUER), clock=lambda: now[0])
    with pytest.raises(Unauthenticated):
        verifier.verify("not-a-jwt")  # nothing to ask the issuer about
    assert asked == []
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            verifier.verify(idp.token("asha.patel"))
    assert len(asked) == 1  # then refused at once, not waited on by each request
    now[0] = 31.0
    with pytest.raises(Unauthenticated):
        verifier.verify(idp.token("asha.patel"))
    assert len(asked) == 2


def _down_after_first_keys(idp: DevIdentityProvider) -> tuple[PeopleVerifier, Served, list[float]]:
    """A verifier that has fetched the issuer's keys at time 0, and the issuer gone down."""
    served, now = Served(idp), [0.0]
    verifier = PeopleVerifier(PeopleConfig(issuer=ISSUER), fetch=served, clock=lambda: now[0])
    verifier.verify(idp.token("asha.patel"))
    served.down = True
    served.asked.clear()
    return verifier, served, now


def test_the_last_keys_fetched_still_verify_for_a_while_when_the_issuer_is_down(
    idp: DevIdentityProvider,
) -> None:
    verifier, served, now = _down_after_first_keys(idp)
    for when in (JWKS_LIFESPAN_S + 1, JWKS_LIFESPAN_S + STALE_JWKS_S - 1):
        now[0] = when
        assert verifier.verify(idp.token("asha.patel")).subject == "asha.patel"
    assert len(served.asked) == 2  # it did try to fetch them again, each time they were due


def test_past_the_stale_time_a_down_issuer_means_refusal_until_it_answers(
    idp: DevIdentityProvider,
) -> None:
    verifier, served, now = _down_after_first_keys(idp)
    now[0] = JWKS_LIFESPAN_S + STALE_JWKS_S
    with pytest.raises(Unauthenticated, match="cannot be reached just now"):
        verifier.verify(idp.token("asha.patel"))
    served.down = False
    now[0] += RETRY_DISCOVERY_S
    assert verifier.verify(idp.token("asha.patel")).subject == "asha.patel"


def test_an_issuer_never_reached_is_said_to_be_unreachable(idp: DevIdentityProvider) -> None:
    served = Served(idp)
    served.down = True
    config = PeopleConfig(issuer=ISSUER, jwks_url=f"{ISSUER}/jwks.json")
    with pytest.raises(Unauthenticated, match="cannot be reached just now"):
        PeopleVerifier(config, fetch=served).verify(idp.token("asha.patel"))


def test_a_key_id_the_held_keys_lack_is_refused_while_the_issuer_is_down(
    idp: DevIdentityProvider,
) -> None:
    verifier, served, now = _down_after_first_keys(idp)
    _kid, key = idp._key()  # the issuer's own key, under a key id it never published
    unknown = jwt.encode(_claims(idp), key, algorithm="EdDSA", headers={"kid": "rotated-2"})
    for when in (RETRY_DISCOVERY_S, JWKS_LIFESPAN_S + 1):  # keys fresh, then stale
        now[0] = when
        with pytest.raises(Unauthenticated, match="signing key is not the issuer's"):
            verifier.verify(unknown)
        assert verifier.verify(idp.token("asha.patel")).subject == "asha.patel"
    assert len(served.asked) == 2  # the issuer was asked for it, once each time


def test_a_down_issuer_is_asked_once_per_retry_time_and_each_failure_is_logged_once(
    idp: DevIdentityProvider, caplog: pytest.LogCaptureFixture
) -> None:
    verifier, served, now = _down_after_first_keys(idp)
    _kid, key = idp._key()
    unknown = jwt.encode(_claims(idp), key, algorithm="EdDSA", headers={"kid": "rotated-2"})
    caplog.set_level(logging.WARNING, logger="services.backbone.people")
    start = JWKS_LIFESPAN_S + 1
    for window in range(3):
        for step in range(5):
            now[0] = start + window * RETRY_DISCOVERY_S + step * (RETRY_DISCOVERY_S - 1) / 4
            verifier.verify(idp.token("asha.patel"))
            with pytest.raises(Unauthenticated):
                verifier.verify(unknown)
        assert len(served.asked) == window + 1
    assert len(caplog.records) == 3
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    assert "asha" not in caplog.text and "Asha" not in caplog.text  # no claim's value


def test_keys_the_issuer_answers_without_are_not_used_any_longer(
    idp: DevIdentityProvider,
) -> None:
    class Withdrawn(Served):
        withdrawn = False

        def jwks(self) -> Any:
            return {"keys": []} if self.withdrawn else super().jwks()

    served, now = Withdrawn(idp), [0.0]
    verifier = PeopleVerifier(PeopleConfig(issuer=ISSUER), fetch=served, clock=lambda: now[0])
    verifier.verify(idp.token("asha.patel"))
    served.withdrawn = True
    now[0] = JWKS_LIFESPAN_S
    with pytest.raises(Unauthenticated, match="keys cannot be used"):
        verifier.verify(idp.token("asha.patel"))
