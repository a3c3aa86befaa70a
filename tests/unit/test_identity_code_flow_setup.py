"""What the login page rests on: people's passwords (kept as scrypt hashes only, checked at
one cost whoever is asked about), the starter logins the demo shows, the registered clients
and their redirect URIs, and the ``infoshare users`` commands that manage them."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from deploy.cli.main import app
from deploy.devstack.identity.clients import Client, load_clients, register_client
from deploy.devstack.identity.passwords import hash_password, verify_password
from deploy.devstack.identity.provider import (
    IG_OFFICER,
    PRACTITIONER,
    DevIdentityProvider,
    ensure_provider,
    starter_logins,
)
from services.backbone.errors import ConfigurationError
from services.backbone.people import PersonRole

ISSUER = "http://127.0.0.1:8160"
runner = CliRunner()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_password_is_kept_only_as_a_salted_hash(tmp_path: Path) -> None:
    provider = DevIdentityProvider(tmp_path)
    provider.create(ISSUER)
    provider.add_user("jo.lead", [PersonRole.IG_OFFICER], "Jo Lead", password="correct horse")
    stored = (tmp_path / "users.yaml").read_text()
    assert "correct horse" not in stored
    assert _mode(tmp_path / "users.yaml") == 0o600
    assert hash_password("correct horse") != hash_password("correct horse")  # salted
    assert provider.check_password("jo.lead", "correct horse") is not None
    assert provider.check_password("jo.lead", "correct horse ") is None
    assert provider.check_password("jo.lead", "") is None


def test_a_refusal_costs_one_hash_whoever_is_asked_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = DevIdentityProvider(tmp_path)
    provider.create(ISSUER)
    provider.add_user("jo.lead", [PersonRole.IG_OFFICER], None, password="right")
    provider.add_user("no.password", [PersonRole.PRACTITIONER], None)
    calls: list[int] = []
    real = hashlib.scrypt

    def counted(*args: Any, **kwargs: Any) -> bytes:
        calls.append(kwargs["n"])
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counted)
    for name, password in [("jo.lead", "wrong"), ("nobody", "x"), ("no.password", "x")]:
        calls.clear()
        assert provider.check_password(name, password) is None
        assert calls == [2**14], name
    assert not verify_password("md5$abc", "x")  # a hash of another kind logs nobody in


def test_users_written_before_passwords_still_load_and_cannot_use_the_page(
    tmp_path: Path,
) -> None:
    provider = DevIdentityProvider(tmp_path)
    provider.create(ISSUER)
    old = {"kim.ray": {"display_name": "Kim Ray", "roles": ["practitioner"]}}
    (tmp_path / "users.yaml").write_text(yaml.safe_dump(old))
    assert [u.name for u in provider.users()] == ["kim.ray"]
    assert provider.token("kim.ray")  # the command line still signs for them
    assert provider.check_password("kim.ray", "") is None
    provider.add_user("kim.ray", [PersonRole.PRACTITIONER], "Kim Ray", password="new one")
    provider.add_user("kim.ray", [PersonRole.IG_OFFICER], "Kim Ray")  # keeps the password
    user = provider.check_password("kim.ray", "new one")
    assert user is not None and user.roles == (PersonRole.IG_OFFICER,)


def test_the_starter_people_get_passwords_the_demo_can_show(tmp_path: Path) -> None:
    directory = tmp_path / "identity"
    provider = ensure_provider(directory, ISSUER)
    logins = starter_logins(directory)
    assert set(logins) == {PRACTITIONER, IG_OFFICER}
    assert _mode(directory / "starter-logins.txt") == 0o600
    for name, password in logins.items():
        assert provider.check_password(name, password) is not None
    ensure_provider(directory, ISSUER)  # the stack starting again
    assert starter_logins(directory) == logins
    assert starter_logins(tmp_path / "elsewhere") == {}


def test_starter_people_from_before_passwords_are_given_one(tmp_path: Path) -> None:
    directory = tmp_path / "identity"
    DevIdentityProvider(directory).create(ISSUER)
    old = {IG_OFFICER: {"display_name": "Sam O.", "roles": ["ig_officer", "practitioner"]}}
    (directory / "users.yaml").write_text(yaml.safe_dump(old))
    provider = ensure_provider(directory, ISSUER)
    user = provider.check_password(IG_OFFICER, starter_logins(directory)[IG_OFFICER])
    assert user is not None
    assert (user.display_name, len(user.roles)) == ("Sam O.", 2)  # as they were


def test_a_client_is_registered_with_its_redirect_uris(tmp_path: Path) -> None:
    register_client(tmp_path, "audit-console", ["https://console.example/cb"])
    register_client(tmp_path, "audit-console", ["http://127.0.0.1:8170/callback"])
    register_client(tmp_path, "other", ["https://other.example/cb"])
    assert load_clients(tmp_path)["audit-console"] == Client(
        "audit-console", ("http://127.0.0.1:8170/callback",)
    )
    assert set(load_clients(tmp_path)) == {"audit-console", "other"}
    assert load_clients(tmp_path / "none") == {}


@pytest.mark.parametrize(
    ("client_id", "uris"),
    [
        ("audit-console", []),
        ("audit-console", ["http://console.example/cb"]),  # plain http off loopback
        ("audit-console", ["https://console.example/cb#frag"]),
        ("audit-console", ["/callback"]),
        ("audit-console", ["http://127.0.0.1:port/cb"]),
        ("-starts-badly", ["https://console.example/cb"]),
        ("a", ["https://console.example/cb"]),
    ],
)
def test_an_unusable_client_registration_is_refused(
    tmp_path: Path, client_id: str, uris: list[str]
) -> None:
    with pytest.raises(ConfigurationError):
        register_client(tmp_path, client_id, uris)
    assert load_clients(tmp_path) == {}


@pytest.mark.parametrize(
    ("asked", "allowed"),
    [
        ("http://127.0.0.1:8170/callback", True),
        ("http://127.0.0.1:40000/callback", True),
        ("http://localhost:40000/callback", True),
        ("http://[::1]:40000/callback", True),
        ("http://127.0.0.1:40000/callback?x=1", False),
        ("http://127.0.0.1:40000/other", False),
        ("https://127.0.0.1:40000/callback", False),
        ("http://127.0.0.1:40000/callback#f", False),
        ("http://user@127.0.0.1:40000/callback", False),
        ("http://127.0.0.2.example:40000/callback", False),
        ("https://console.example/cb", True),
        ("https://console.example:8443/cb", False),
    ],
)
def test_a_redirect_uri_matches_exactly_or_by_path_on_loopback(asked: str, allowed: bool) -> None:
    client = Client("c1", ("http://127.0.0.1:8170/callback", "https://console.example/cb"))
    assert client.allows(asked) is allowed


def test_the_users_commands_set_passwords_and_register_clients(tmp_path: Path) -> None:
    env = {"INFOSHARE_STATE_DIR": str(tmp_path / "state")}
    DevIdentityProvider(tmp_path / "state" / "identity").create(ISSUER)

    def run(*args: str, stdin: str | None = None) -> str:
        result = runner.invoke(app, ["users", *args], input=stdin, env=env)
        assert result.exit_code == 0, result.output
        return result.output

    run("add", "jo.lead", "--role", "ig_officer", "--password-stdin", stdin="s3cret pass\n")
    shown = run("add", "kim.ray", "--role", "practitioner", "--generate-password")
    generated = shown.split("password: ", 1)[1].strip()
    provider = DevIdentityProvider(tmp_path / "state" / "identity")
    assert provider.check_password("jo.lead", "s3cret pass") is not None
    assert provider.check_password("kim.ray", generated) is not None
    run("client", "audit-console", "--redirect-uri", "http://127.0.0.1:8170/callback")
    clients = load_clients(tmp_path / "state" / "identity")
    assert clients["audit-console"].redirect_uris == ("http://127.0.0.1:8170/callback",)
    refused = runner.invoke(
        app, ["users", "client", "x1", "--redirect-uri", "http://evil.example/"], env=env
    )
    assert refused.exit_code == 2
