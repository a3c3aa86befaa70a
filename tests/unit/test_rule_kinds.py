"""Golden tests of every field rule kind, arrays included, and the token properties."""

from __future__ import annotations

import os
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent.core.fields import TransformError, project
from consent.core.generalise import MASK, age_on, generalise
from consent.core.model import FieldRule, Generalisation, RuleKind
from consent.core.tokens import TokenError, detokenise, key_id_of, tokenise
from services.backbone.keyed import Key

ON = date(2026, 11, 20)
KEY = Key("token-a", os.urandom(64))
OLD = Key("token-old", os.urandom(64))
DATA: dict[str, Any] = {
    "subject": {"nhs_number": "9990000123", "date_of_birth": "2016-04-09", "postcode": "NS1 4AP"},
    "codes": [
        {"system": "snomed", "code": "417163006", "note": "free"},
        {"system": "snomed", "code": "75478009"},
    ],
    "tags": ["urgent", "repeat"],
    "visits": [{"staff": [{"role": "nurse", "name": "A"}, {"role": "doctor", "name": "B"}]}],
}


def rule(
    kind: RuleKind, path: str, target: str | None = None, to: Generalisation | None = None
) -> FieldRule:
    return FieldRule(kind, path, target or path, to)


def run(*rules: FieldRule) -> Any:
    def tok(path: str, value: str) -> str:
        return tokenise(KEY, recipient="r", path=path, value=value)

    return project(DATA, rules, pseudonymise=lambda p, v: f"p({p}={v})", tokenise=tok, on=ON)


def test_allow_copies_exactly_what_it_names() -> None:
    assert run(rule(RuleKind.ALLOW, "subject.postcode")).payload == {
        "subject": {"postcode": "NS1 4AP"}
    }


def test_mask_says_the_field_exists_but_not_its_value_or_length() -> None:
    result = run(rule(RuleKind.MASK, "subject.nhs_number"))
    assert result.payload == {"subject": {"nhs_number": MASK}}
    assert result.disclosed == ("subject.nhs_number",)


@pytest.mark.parametrize(
    ("to", "path", "expected"),
    [
        (Generalisation.YEAR, "subject.date_of_birth", "2016"),
        (Generalisation.MONTH, "subject.date_of_birth", "2016-04"),
        (Generalisation.AGE_BAND, "subject.date_of_birth", "5-10"),
        (Generalisation.POSTCODE_DISTRICT, "subject.postcode", "NS1"),
        (Generalisation.POSTCODE_AREA, "subject.postcode", "NS"),
    ],
)
def test_generalise(to: Generalisation, path: str, expected: str) -> None:
    result = run(rule(RuleKind.GENERALISE, path, "out.value", to))
    assert result.payload == {"out": {"value": expected}}


@pytest.mark.parametrize(
    ("born", "band"),
    [
        ("2026-11-20", "0-4"),
        ("2021-11-21", "0-4"),
        ("2021-11-20", "5-10"),
        ("2015-11-21", "5-10"),
        ("2015-11-20", "11-15"),
        ("2010-11-20", "16-17"),
        ("2008-11-21", "16-17"),
        ("2008-11-20", "18+"),
    ],
)
def test_age_bands_turn_on_the_birthday(born: str, band: str) -> None:
    assert generalise(born, Generalisation.AGE_BAND, on=ON) == band


def test_an_age_band_for_a_birth_after_the_event_is_refused() -> None:
    with pytest.raises(TransformError):
        generalise("2027-01-01", Generalisation.AGE_BAND, on=ON)
    assert age_on(date(2016, 4, 9), ON) == 10


def test_pseudonymise_and_tokenise_name_their_fields() -> None:
    result = run(
        rule(RuleKind.PSEUDONYMISE, "subject.nhs_number", "subject.pseudonym"),
        rule(RuleKind.TOKENISE, "subject.nhs_number", "subject.token"),
    )
    assert result.payload["subject"]["pseudonym"] == "p(subject.nhs_number=9990000123)"
    token = result.payload["subject"]["token"]
    assert token.startswith("tok1.token-a.") and "9990000123" not in token
    assert result.pseudonymised == ("subject.pseudonym",)
    assert result.tokenised == ("subject.token",)


def test_arrays_of_objects_keep_their_alignment() -> None:
    result = run(
        rule(RuleKind.ALLOW, "codes[*].code"),
        rule(RuleKind.MASK, "codes[*].note", "codes[*].remark"),
    )
    assert result.payload == {
        "codes": [{"code": "417163006", "remark": MASK}, {"code": "75478009"}]
    }
    assert "codes[*].system" in result.withheld
    assert "codes[*].code" not in result.withheld


def test_arrays_of_scalars_and_nested_arrays() -> None:
    assert run(rule(RuleKind.ALLOW, "tags[*]")).payload == {"tags": ["urgent", "repeat"]}
    nested = run(rule(RuleKind.ALLOW, "visits[*].staff[*].role")).payload
    assert nested == {"visits": [{"staff": [{"role": "nurse"}, {"role": "doctor"}]}]}


def test_a_token_is_deterministic_per_recipient_and_field_and_differs_otherwise() -> None:
    one = tokenise(KEY, recipient="r1", path="a", value="x")
    assert one == tokenise(KEY, recipient="r1", path="a", value="x")
    assert one != tokenise(KEY, recipient="r2", path="a", value="x")
    assert one != tokenise(KEY, recipient="r1", path="b", value="x")
    assert key_id_of(one) == "token-a"


@given(
    value=st.text(max_size=200),
    recipient=st.sampled_from(["la", "ph"]),
    path=st.sampled_from(["subject.nhs_number", "attendance.encounter_id"]),
)
def test_tokenise_then_detokenise_is_the_identity(value: str, recipient: str, path: str) -> None:
    keys = {KEY.key_id: KEY, OLD.key_id: OLD}
    for key in (KEY, OLD):  # tokens under a rotated-out key still reverse while it is kept
        token = tokenise(key, recipient=recipient, path=path, value=value)
        assert detokenise(keys, recipient=recipient, path=path, token=token) == value


def test_a_token_reverses_only_for_its_recipient_and_field_and_known_keys() -> None:
    token = tokenise(KEY, recipient="la", path="a", value="secret")
    with pytest.raises(TokenError, match="does not authenticate"):
        detokenise({KEY.key_id: KEY}, recipient="ph", path="a", token=token)
    with pytest.raises(TokenError, match="retired"):
        detokenise({OLD.key_id: OLD}, recipient="la", path="a", token=token)
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(TokenError):
        detokenise({KEY.key_id: KEY}, recipient="la", path="a", token=tampered)
    with pytest.raises(TokenError, match="not an infoshare token"):
        detokenise({KEY.key_id: KEY}, recipient="la", path="a", token="hello")


def test_encrypt_seals_a_field_only_its_recipient_can_open() -> None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from consent.core.sealed import seal
    from services.agency.sealed import open_sealed
    from services.backbone.sealed import SealError

    private = X25519PrivateKey.generate()

    def sealed(path: str, value: str) -> str:
        return seal(private.public_key(), recipient="r", path=path, value=value)

    result = project(
        DATA,
        (rule(RuleKind.ENCRYPT, "subject.postcode", "subject.sealed"),),
        pseudonymise=lambda p, v: v,
        encrypt=sealed,
        on=ON,
    )
    value = result.payload["subject"]["sealed"]
    assert value.startswith("hpke1.") and "NS1" not in value
    assert result.encrypted == ("subject.sealed",)
    assert open_sealed(private, recipient="r", path="subject.postcode", sealed=value) == "NS1 4AP"
    with pytest.raises(SealError):
        open_sealed(private, recipient="other", path="subject.postcode", sealed=value)
    with pytest.raises(SealError):
        open_sealed(
            X25519PrivateKey.generate(), recipient="r", path="subject.postcode", sealed=value
        )
    # HPKE is randomised: the same value seals differently each time (nothing to link).
    assert sealed("subject.postcode", "NS1 4AP") != sealed("subject.postcode", "NS1 4AP")
