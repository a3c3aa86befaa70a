"""``infoshare keys``: a recipient makes its own pair and the hub trusts only the public
half; ``split`` gives each role its own file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from deploy.cli.main import app
from services.backbone.key_roles import Role
from services.backbone.keyring import load_keyring
from services.backbone.recipient_keys import parse_public

LA = "la-northshire"


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, ["keys", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_recipient_key_is_made_apart_and_only_its_public_half_trusted(tmp_path: Path) -> None:
    hub = tmp_path / "hub" / "keyring.yaml"
    _run("generate", "--out", str(hub))
    assert load_keyring(hub).recipient_public == {}  # the hub made no recipient's key
    own = tmp_path / "recipient" / "la.key"
    said = _run("recipient", "new", "--out", str(own))
    public = said.split("keys trust`: ")[1].split()[0]
    parse_public(public)
    assert "registered" in _run("trust", "--keyring", str(hub), "--agency", LA, "--public", public)
    assert LA in load_keyring(hub).recipient_public
    assert own.read_text().strip() not in hub.read_text()  # the private half is not there
    listed = _run("split", "--keyring", str(hub), "--into", str(tmp_path / "roles"))
    assert f"agency:{LA}" in listed
    processor = load_keyring(tmp_path / "roles" / f"{Role.PROCESSOR}.keys.yaml")
    assert LA in processor.recipient_public


def test_a_bad_public_key_or_unknown_agency_is_refused_without_a_change(tmp_path: Path) -> None:
    hub = tmp_path / "keyring.yaml"
    _run("generate", "--out", str(hub))
    before = hub.read_text()
    for agency, public in ((LA, "not-a-key"), ("nobody", "A" * 43 + "=")):
        result = CliRunner().invoke(
            app, ["keys", "trust", "--keyring", str(hub), "--agency", agency, "--public", public]
        )
        assert result.exit_code == 1, result.output
    assert hub.read_text() == before


def test_webhook_secret_keys_rotate_keeping_the_old_one_to_read_with(tmp_path: Path) -> None:
    hub = tmp_path / "keyring.yaml"
    _run("generate", "--out", str(hub))
    before = load_keyring(hub)
    assert "new active webhook_secret key" in _run(
        "rotate", "--keyring", str(hub), "--kind", "webhook_secret"
    )
    after = load_keyring(hub)
    assert set(before.webhook_keys) < set(after.webhook_keys)
    assert after.active_webhook_key not in before.webhook_keys
    refused = CliRunner().invoke(app, ["keys", "rotate", "--keyring", str(hub), "--kind", "x"])
    assert refused.exit_code == 2


def test_an_agency_token_expires_and_a_renewed_one_replaces_it(tmp_path: Path) -> None:
    hub = tmp_path / "keyring.yaml"
    _run("generate", "--out", str(hub))
    old = (tmp_path / "agency-tokens" / f"{LA}.token").read_text().strip()
    ring = load_keyring(hub)
    assert ring.agency(old) == LA
    expires = ring.agency_token_expiry[LA]  # a year from now
    assert LA in ring.live_agency_tokens(now=expires - timedelta(seconds=1))
    assert LA not in ring.live_agency_tokens(now=expires)
    assert "the old one is refused" in _run(
        "agency-token", "--keyring", str(hub), "--agency", LA, "--expires-in", "30"
    )
    new = (tmp_path / "agency-tokens" / f"{LA}.token").read_text().strip()
    renewed = load_keyring(hub)
    assert new != old and renewed.agency(new) == LA and renewed.agency(old) is None
    assert renewed.agency_credential(new) is not None


def old_token(hub: Path) -> str:
    """Rotate the token key; the older one's id."""
    before = load_keyring(hub).active_token
    _run("rotate", "--keyring", str(hub), "--kind", "token")
    assert before is not None
    return before


def test_rotate_and_retire_refresh_the_role_files_and_routing_is_refused(tmp_path: Path) -> None:
    hub = tmp_path / "keyring.yaml"
    _run("generate", "--out", str(hub))
    _run("split", "--keyring", str(hub), "--into", str(tmp_path))
    audit = tmp_path / f"{Role.AUDIT}.keys.yaml"
    old = load_keyring(audit).require_audit_signing()[0]
    said = _run("rotate", "--keyring", str(hub), "--kind", "audit_signing")
    new = said.split("audit_signing key ")[1].split(";")[0]
    assert "restart the audit service" in said
    assert list(load_keyring(audit).audit_verifying_keys()) == [old, new]

    retired = _run("retire", "--keyring", str(hub), "--key-id", old_token(hub))
    assert "token key" in retired
    assert len(load_keyring(tmp_path / f"{Role.CONSENT}.keys.yaml").tokens) == 1  # gone there too
    _run("rotate", "--keyring", str(hub), "--kind", "pseudonym", "--agency", LA)
    assert f"pseudonym.{LA}" in load_keyring(hub).previous  # the operator's alone
    assert not load_keyring(tmp_path / f"{Role.PROCESSOR}.keys.yaml").previous

    before = hub.read_text()
    refused = CliRunner().invoke(
        app, ["keys", "rotate", "--keyring", str(hub), "--kind", "routing"]
    )
    assert refused.exit_code == 2
    assert "routing is not rotated" in " ".join(refused.output.split())
    assert hub.read_text() == before
