"""``infoshare keys api-key``: narrower API keys for an agency's systems (issue, list,
revoke). The keyring keeps each key's hash; a new key is printed once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from deploy.cli.terminal import err, fail, out
from services.backbone.api_keys import (
    DEFAULT_TTL,
    MAX_TTL,
    SCOPES,
    new_api_key,
    parse_api_keys,
    revoke_api_key,
)
from services.backbone.errors import ConfigurationError
from services.backbone.keyring import dump_keyring, read_keyring_doc, write_private

app = typer.Typer(
    help="Agency API keys with scopes (events:publish, inbox:read); hashed in the keyring",
    no_args_is_help=True,
)
Keyring = Annotated[Path, typer.Option(help="the keyring file", exists=True, dir_okay=False)]


@app.command("issue")
def issue(
    keyring: Keyring,
    agency: Annotated[str, typer.Option(help="the agency the key acts as")],
    scope: Annotated[
        list[str], typer.Option(help=f"what the key may do, repeatable: {', '.join(SCOPES)}")
    ],
    name: Annotated[str, typer.Option(help="a label in the key's id, e.g. mis")] = "",
    expires_in: Annotated[
        int, typer.Option(min=1, max=MAX_TTL.days, help="days until the key stops working")
    ] = DEFAULT_TTL.days,
) -> None:
    """Make a key for AGENCY with the given scopes, lasting EXPIRES_IN days; print it once
    (only its hash is kept). Running services take it up within a second."""
    try:
        doc = read_keyring_doc(keyring)
        key_id, secret = new_api_key(
            doc, agency=agency, scopes=scope, name=name, ttl=timedelta(days=expires_in)
        )
        save_keyring(keyring, doc, agency)
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    expires = next(k.expires for k in parse_api_keys(doc["agency_api_keys"]) if k.key_id == key_id)
    err.print(
        f"issued {key_id} for {agency} ({', '.join(sorted(set(scope)))}), "
        f"expires {expires:%Y-%m-%d %H:%M} UTC; the key:"
    )
    print(secret)  # alone on stdout, for a script to capture


def save_keyring(keyring: Path, doc: dict[str, Any], agency: str | None = None) -> None:
    """Write the keyring, and the role files beside it (if any) that services read."""
    from services.backbone.key_split import refresh_role_files
    from services.backbone.settings import BackboneSettings

    directory = BackboneSettings().directory()  # INFOSHARE_AGENCIES_FILE, if set
    if agency is not None:
        directory.get(agency)
    write_private(keyring, dump_keyring(doc))
    refresh_role_files(keyring, [a.id for a in directory])


@app.command("list")
def list_keys(keyring: Keyring) -> None:
    """The keyring's API keys: id, agency and scopes (never the key or its hash)."""
    try:
        keys = parse_api_keys(read_keyring_doc(keyring).get("agency_api_keys"))
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    if not keys:
        out.print("no narrower API keys (each agency's own token has every scope)")
    now = datetime.now(UTC)
    for key in keys:
        if key.expires is None:
            lasts = "no expiry (issued before keys expired: reissue it)"
        else:
            lasts = f"{'expired' if not key.live(now) else 'expires'} {key.expires:%Y-%m-%d}"
        out.print(f"{key.key_id}  {key.agency}  {' '.join(sorted(key.scopes))}  {lasts}")


@app.command("revoke")
def revoke(
    keyring: Keyring, key_id: Annotated[str, typer.Argument(help="the key's id (see list)")]
) -> None:
    """Remove a key: running services refuse it within a second."""
    try:
        doc = read_keyring_doc(keyring)
        revoke_api_key(doc, key_id)
        save_keyring(keyring, doc)
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    out.print(f"revoked {key_id}")
