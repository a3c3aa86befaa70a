"""`infoshare keys generate` writes one token per agency to `agency-tokens/<agency>.token`
beside the keyring, "which keeps only their SHA-256 hashes" (README, "Tokens"): no token's
text is in the keyring or in any role file split from it, and each `agency_tokens` entry is
its token's SHA-256."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from typer.testing import CliRunner

from deploy.cli.main import app
from services.backbone.directory import load_directory
from services.backbone.keyring import load_keyring


def _run(*args: str) -> None:
    result = CliRunner().invoke(app, ["keys", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _tokens(folder: Path) -> dict[str, str]:
    return {f.stem: f.read_text().strip() for f in sorted(folder.glob("*.token"))}


def _hash_of(entry: object) -> str:
    # An entry is {sha256, expires}, or a bare hash in a keyring made before tokens expired.
    return str(entry["sha256"]) if isinstance(entry, dict) else str(entry)


def _assert_only_hashes(keyring: Path, tokens: dict[str, str]) -> None:
    text = keyring.read_text()
    for agency, token in tokens.items():
        assert token not in text, f"{agency}'s token is in {keyring.name}"
    doc = yaml.safe_load(text)
    assert {a: _hash_of(e) for a, e in doc["agency_tokens"].items()} == {
        a: hashlib.sha256(t.encode()).hexdigest() for a, t in tokens.items()
    }
    ring = load_keyring(keyring)
    assert all(ring.agency(token) == agency for agency, token in tokens.items())


def test_the_keyring_keeps_only_the_sha256_of_each_agencys_token(tmp_path: Path) -> None:
    hub = tmp_path / "keyring.yaml"
    _run("generate", "--out", str(hub))
    tokens = _tokens(tmp_path / "agency-tokens")
    assert set(tokens) == {a.id for a in load_directory(None)}
    assert all(len(t) >= 32 for t in tokens.values())
    _assert_only_hashes(hub, tokens)

    # A renewed token is kept the same way, and so is every role file split from the keyring.
    agency = sorted(tokens)[0]
    _run("agency-token", "--keyring", str(hub), "--agency", agency, "--expires-in", "30")
    renewed = _tokens(tmp_path / "agency-tokens")
    assert renewed[agency] != tokens[agency]
    _assert_only_hashes(hub, renewed)
    _run("split", "--keyring", str(hub), "--into", str(tmp_path / "roles"))
    role_files = sorted((tmp_path / "roles").glob("*.yaml"))
    assert role_files
    for role_file in role_files:
        text = role_file.read_text()
        for token in (*tokens.values(), *renewed.values()):
            assert token not in text, f"a token is in {role_file.name}"
