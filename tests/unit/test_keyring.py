"""The keyring: generate, load, refuse unusable secrets, never show a secret."""

from __future__ import annotations

import base64
import os
import secrets
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.backbone.errors import ConfigurationError
from services.backbone.keyed import Key
from services.backbone.keyring import (
    Keyring,
    add_audit_keys,
    generate_keyring,
    load_keyring,
    parse_keyring,
)

AGENCIES = ["la-northshire", "nhs-riverside-ed", "ph-northshire"]
GOOD = base64.b64encode(bytes(range(100, 132))).decode()


def entry(secret: Any = GOOD, key_id: str = "k1") -> dict[str, Any]:
    return {"id": key_id, "secret": secret}


def test_parses_a_full_keyring() -> None:
    ring = parse_keyring(
        {"routing": entry(), "audit_subject": entry(key_id="a1"), "pseudonym": {"ph": entry()}}
    )
    assert ring.require_routing() == Key("k1", bytes(range(100, 132)))
    assert ring.require_audit_subject().key_id == "a1"
    assert ring.require_pseudonym_keys(["ph"])["ph"].secret == bytes(range(100, 132))


def test_secrets_never_appear_in_a_repr() -> None:
    ring = parse_keyring({"routing": entry(), "pseudonym": {"ph": entry()}})
    for shown in (repr(ring), str(ring), repr(ring.require_routing())):
        assert GOOD not in shown
        assert repr(bytes(range(100, 132))) not in shown
        assert "secret=" not in shown
    assert "k1" in repr(ring.require_routing())


@pytest.mark.parametrize(
    "text",
    [
        "change-me",
        "CHANGE_ME_BEFORE_PRODUCTION_0123456789abcdef",
        "my-secret",
        "example",
        "default",
        "<placeholder>",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "TODO",
    ],
)
def test_refuses_a_placeholder(text: str) -> None:
    with pytest.raises(ConfigurationError, match="'routing' holds a placeholder") as info:
        parse_keyring({"routing": entry(text)})
    assert text not in str(info.value)


def test_refuses_a_secret_that_is_not_base64() -> None:
    with pytest.raises(ConfigurationError, match="not base64") as info:
        parse_keyring({"routing": entry("@@not base64 at all@@")})
    assert "@@" not in str(info.value)


@pytest.mark.parametrize("size", [0, 1, 16, 31])
def test_refuses_a_short_secret(size: int) -> None:
    short = base64.b64encode(b"\x8f" * size).decode()
    with pytest.raises(ConfigurationError, match=f"has {size} bytes, at least 32") as info:
        parse_keyring({"pseudonym": {"ph-northshire": entry(short)}})
    assert "pseudonym.ph-northshire" in str(info.value)
    if short:
        assert short not in str(info.value)


@pytest.mark.parametrize(
    "doc",
    [
        {"routing": {"secret": GOOD}},
        {"routing": {"id": "k1"}},
        {"routing": GOOD},
        {"routing": None},
    ],
)
def test_refuses_an_entry_without_id_and_secret(doc: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="needs 'id' and 'secret'"):
        parse_keyring(doc)


@pytest.mark.parametrize("doc", [None, [], "routing"])
def test_refuses_a_document_that_is_not_a_mapping(doc: Any) -> None:
    with pytest.raises(ConfigurationError, match="not a YAML mapping"):
        parse_keyring(doc)


def test_refuses_pseudonym_keys_that_are_not_a_mapping() -> None:
    with pytest.raises(ConfigurationError, match="'pseudonym' must map"):
        parse_keyring({"pseudonym": [entry()]})


def test_a_missing_key_is_refused_when_required() -> None:
    ring = parse_keyring({"pseudonym": {"ph-northshire": entry()}})
    with pytest.raises(ConfigurationError, match="no 'routing' key"):
        ring.require_routing()
    with pytest.raises(ConfigurationError, match="no 'audit_subject' key"):
        ring.require_audit_subject()
    with pytest.raises(ConfigurationError, match=r"for: la-northshire, nhs-riverside-ed$"):
        ring.require_pseudonym_keys(AGENCIES)


def test_load_refuses_no_path() -> None:
    with pytest.raises(ConfigurationError, match="INFOSHARE_KEYRING_FILE"):
        load_keyring(None)


def test_load_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read the keyring file"):
        load_keyring(tmp_path / "absent.yaml")


def test_load_refuses_invalid_yaml_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "keyring.yaml"
    path.write_text(f"routing: {{id: k1, secret: {GOOD}\n  : [", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="is not valid YAML") as info:
        load_keyring(path)
    assert GOOD not in str(info.value)


def test_generate_then_load(tmp_path: Path) -> None:
    path = generate_keyring(tmp_path / "keys" / "keyring.yaml", AGENCIES)
    ring = load_keyring(path)
    keys = [ring.require_routing(), ring.require_audit_subject()]
    keys += list(ring.require_pseudonym_keys(AGENCIES).values())
    assert len(keys) == 2 + len(AGENCIES)
    assert all(len(k.secret) == 32 for k in keys)
    assert len({k.secret for k in keys}) == len(keys)
    assert len({k.key_id for k in keys}) == len(keys)


def test_generated_file_is_private(tmp_path: Path) -> None:
    path = generate_keyring(tmp_path / "keyring.yaml", AGENCIES)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_generate_refuses_to_overwrite_keys(tmp_path: Path) -> None:
    path = generate_keyring(tmp_path / "keyring.yaml", AGENCIES)
    before = path.read_bytes()
    with pytest.raises(ConfigurationError, match="refusing to overwrite"):
        generate_keyring(path, AGENCIES)
    assert path.read_bytes() == before


def test_generate_with_overwrite_makes_new_keys(tmp_path: Path) -> None:
    path = generate_keyring(tmp_path / "keyring.yaml", AGENCIES)
    old = load_keyring(path).require_routing().secret
    generate_keyring(path, AGENCIES, overwrite=True)
    assert load_keyring(path).require_routing().secret != old


def test_overwriting_a_readable_file_makes_it_private(tmp_path: Path) -> None:
    path = tmp_path / "keyring.yaml"
    path.write_text("# old\n", encoding="utf-8")
    os.chmod(path, 0o644)
    generate_keyring(path, AGENCIES, overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_generated_keyring_always_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Random bytes whose base64 encoding starts "ToDo": as likely as any other 32 bytes.
    unlucky = base64.b64decode("ToDo") + os.urandom(29)
    monkeypatch.setattr(secrets, "token_bytes", lambda n: unlucky[:n])
    path = generate_keyring(tmp_path / "keyring.yaml", AGENCIES)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert doc["routing"]["secret"].startswith("ToDo")
    assert isinstance(load_keyring(path), Keyring)


def test_rotation_adds_an_active_token_key_and_keeps_the_old_until_retired(
    tmp_path: Path,
) -> None:
    from services.backbone.key_rotation import retire_key, rotate_key

    path = generate_keyring(tmp_path / "keyring.yaml", AGENCIES)
    old = load_keyring(path)
    assert old.active_token is not None
    new_id = rotate_key(path, "token")
    rotated = load_keyring(path)
    assert rotated.active_token == new_id != old.active_token
    assert set(rotated.tokens) == {old.active_token, new_id}
    with pytest.raises(ConfigurationError, match="active token key"):
        retire_key(path, new_id)
    retire_key(path, old.active_token)
    assert set(load_keyring(path).tokens) == {new_id}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_keyring_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.backbone.settings import BackboneSettings

    path = generate_keyring(tmp_path / "keyring.yaml", AGENCIES)
    monkeypatch.setenv("INFOSHARE_KEYRING_YAML", path.read_text())
    monkeypatch.delenv("INFOSHARE_KEYRING_FILE", raising=False)
    settings = BackboneSettings()
    assert settings.keyring(None).routing == load_keyring(path).routing
    assert "secret" not in repr(settings)  # SecretStr hides it


def test_audit_keys_are_added_to_an_older_keyring_and_nothing_else_changes(
    tmp_path: Path,
) -> None:
    path = generate_keyring(tmp_path / "keyring.yaml", ["la-northshire"])
    doc = yaml.safe_load(path.read_text())
    older = {k: v for k, v in doc.items() if k not in ("audit_chain", "audit_signing")}
    path.write_text(yaml.safe_dump(older))
    with pytest.raises(ConfigurationError, match="audit_chain"):
        load_keyring(path).require_audit_chain()

    assert add_audit_keys(path) == ["audit_chain", "audit_signing"]
    upgraded = load_keyring(path)
    assert upgraded.require_audit_chain().secret and upgraded.require_audit_signing()[0]
    again = yaml.safe_load(path.read_text())
    assert {k: again[k] for k in older} == older  # every other key kept
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert add_audit_keys(path) == []  # idempotent


def test_webhook_secret_keys_parse_like_token_keys() -> None:
    other = base64.b64encode(bytes(range(140, 172))).decode()
    ring = parse_keyring(
        {"webhook_secret": [entry(key_id="w1"), {**entry(other, key_id="w2"), "active": True}]}
    )
    assert ring.active_webhook_key == "w2"
    assert ring.webhook_keys["w1"] == Key("w1", bytes(range(100, 132)))
    assert set(ring.webhook_keys) == {"w1", "w2"}
    assert other not in repr(ring)
    assert parse_keyring({}).active_webhook_key is None and parse_keyring({}).webhook_keys == {}


@pytest.mark.parametrize(
    ("rows", "said"),
    [
        ([entry(key_id="w1")], "exactly one"),  # none active
        (
            [{**entry(key_id="w1"), "active": True}, {**entry(key_id="w2"), "active": True}],
            "exactly one",
        ),
        ([{**entry(key_id="w1"), "active": True}, entry(key_id="w1")], "twice"),
        (
            [{**entry(base64.b64encode(os.urandom(48)).decode(), "w1"), "active": True}],
            "32 bytes",
        ),
        ({"w1": GOOD}, "list"),
    ],
)
def test_webhook_secret_keys_are_refused_when_unusable(rows: Any, said: str) -> None:
    with pytest.raises(ConfigurationError, match=said) as caught:
        parse_keyring({"webhook_secret": rows})
    assert GOOD not in str(caught.value)


def test_a_generated_keyring_has_one_active_webhook_key(tmp_path: Path) -> None:
    ring = load_keyring(generate_keyring(tmp_path / "keyring.yaml", AGENCIES))
    assert ring.active_webhook_key is not None
    assert list(ring.webhook_keys) == [ring.active_webhook_key]
    assert len(ring.webhook_keys[ring.active_webhook_key].secret) == 32
