"""Agency API keys: the keyring keeps hashes only, a key proves its agency and scopes, and
the CLI issues, lists and revokes keys without ever showing a hash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploy.cli.main import app
from services.backbone.api_keys import (
    PUBLISH,
    READ_INBOX,
    credential_for,
    new_api_key,
    parse_api_keys,
    revoke_api_key,
    token_hash,
)
from services.backbone.errors import ConfigurationError
from services.backbone.key_reload import KeyringSource
from services.backbone.keyring import (
    dump_keyring,
    generate_keyring,
    load_keyring,
    read_keyring_doc,
    write_private,
)

SCHOOL = "school-oakfield"


def test_the_agency_token_has_every_scope_and_a_narrow_key_only_its_own() -> None:
    doc: dict[str, object] = {}
    key_id, secret = new_api_key(doc, agency=SCHOOL, scopes=[READ_INBOX], name="viewer")
    keys = parse_api_keys(doc["agency_api_keys"])
    assert secret not in str(doc)  # only the hash is kept
    tokens = {"la-northshire": token_hash("la-token")}
    own = credential_for("la-token", agency_tokens=tokens, api_keys=keys)
    assert own is not None and own.agency == "la-northshire"
    assert own.scopes == {PUBLISH, READ_INBOX}
    narrow = credential_for(secret, agency_tokens=tokens, api_keys=keys)
    assert narrow is not None
    assert (narrow.agency, narrow.key_id, narrow.scopes) == (
        SCHOOL,
        key_id,
        frozenset({READ_INBOX}),
    )
    assert credential_for("guess", agency_tokens=tokens, api_keys=keys) is None
    revoke_api_key(doc, key_id)
    assert (
        credential_for(
            secret, agency_tokens=tokens, api_keys=parse_api_keys(doc["agency_api_keys"])
        )
        is None
    )


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ({"id": "k"}, "is a list"),
        (["k"], "is not a mapping"),
        ([{"id": "K!", "agency": SCHOOL, "sha256": "0" * 64, "scopes": [PUBLISH]}], "id must"),
        ([{"id": "k", "agency": "", "sha256": "0" * 64, "scopes": [PUBLISH]}], "no agency"),
        ([{"id": "k", "agency": SCHOOL, "sha256": "00", "scopes": [PUBLISH]}], "sha256"),
        ([{"id": "k", "agency": SCHOOL, "sha256": "0" * 64, "scopes": ["admin"]}], "scopes"),
        ([{"id": "k", "agency": SCHOOL, "sha256": "0" * 64, "scopes": []}], "scopes"),
        (
            [{"id": "k", "agency": SCHOOL, "sha256": "0" * 64, "scopes": [PUBLISH]}] * 2,
            "appears twice",
        ),
    ],
)
def test_a_bad_entry_is_refused_by_name(rows: object, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        parse_api_keys(rows)


def test_the_cli_issues_lists_and_revokes(tmp_path: Path) -> None:
    keyring = generate_keyring(tmp_path / "keyring.yaml", [SCHOOL, "la-northshire"])
    runner = CliRunner()
    issued = runner.invoke(
        app,
        [
            "keys",
            "api-key",
            "issue",
            "--keyring",
            str(keyring),
            "--agency",
            SCHOOL,
            "--scope",
            PUBLISH,
            "--name",
            "mis",
        ],
    )
    assert issued.exit_code == 0, issued.output
    secret = issued.stdout.strip().splitlines()[-1]
    found = load_keyring(keyring).agency_credential(secret)
    assert found is not None and found.scopes == {PUBLISH}
    listed = runner.invoke(app, ["keys", "api-key", "list", "--keyring", str(keyring)])
    (key,) = read_keyring_doc(keyring)["agency_api_keys"]
    assert key["id"] in listed.output and key["sha256"] not in listed.output
    assert secret not in listed.output
    revoked = runner.invoke(
        app, ["keys", "api-key", "revoke", "--keyring", str(keyring), key["id"]]
    )
    assert revoked.exit_code == 0
    assert load_keyring(keyring).agency_credential(secret) is None
    again = runner.invoke(app, ["keys", "api-key", "revoke", "--keyring", str(keyring), key["id"]])
    assert again.exit_code == 1
    unknown = runner.invoke(
        app,
        [
            "keys",
            "api-key",
            "issue",
            "--keyring",
            str(keyring),
            "--agency",
            "nobody",
            "--scope",
            PUBLISH,
        ],
    )
    assert unknown.exit_code == 1


def test_a_key_expires_when_it_says_and_was_given_an_expiry_at_issue() -> None:
    doc: dict[str, object] = {}
    issued = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    _id, secret = new_api_key(
        doc, agency=SCHOOL, scopes=[PUBLISH], ttl=timedelta(days=30), now=issued
    )
    (key,) = parse_api_keys(doc["agency_api_keys"])
    assert key.expires == issued + timedelta(days=30)

    def proves(at: datetime) -> bool:
        found = credential_for(secret, agency_tokens={}, api_keys=[key], now=at)
        return found is not None

    assert proves(issued + timedelta(days=29))
    assert not proves(issued + timedelta(days=30))
    for ttl in (timedelta(0), timedelta(days=400)):
        with pytest.raises(ConfigurationError, match="at most"):
            new_api_key({}, agency=SCHOOL, scopes=[PUBLISH], ttl=ttl)


def test_an_expiry_without_an_offset_is_refused() -> None:
    row = {"id": "k", "agency": SCHOOL, "sha256": "0" * 64, "scopes": [PUBLISH]}
    with pytest.raises(ConfigurationError, match="UTC offset"):
        parse_api_keys([{**row, "expires": "2027-01-01T00:00:00"}])
    with pytest.raises(ConfigurationError, match="ISO 8601"):
        parse_api_keys([{**row, "expires": "next tuesday"}])


def test_keys_are_read_again_when_their_file_changes_and_a_broken_file_is_not_taken(
    tmp_path: Path,
) -> None:
    path = generate_keyring(tmp_path / "keyring.yaml", [SCHOOL])
    doc = read_keyring_doc(path)
    _id, secret = new_api_key(doc, agency=SCHOOL, scopes=[PUBLISH])
    write_private(path, dump_keyring(doc))
    now = [0.0]
    source = KeyringSource(lambda: load_keyring(path), path, clock=lambda: now[0])
    assert source.current().agency_credential(secret) is not None
    revoke_api_key(doc, _id)
    write_private(path, dump_keyring(doc))
    assert source.current().agency_credential(secret) is not None  # not looked at yet
    now[0] = 1.0
    assert source.current().agency_credential(secret) is None  # revoked, no restart
    path.write_text("routing: [half written", encoding="utf-8")
    now[0] = 2.0
    assert source.current().require_routing()  # the keys held stay in force
