"""``infoshare keys api-key``: narrower API keys for an agency's systems (issue, list,
revoke). The keyring keeps each key's hash; a new key is printed once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deploy.cli.terminal import err, fail, out
from services.backbone.api_keys import SCOPES, new_api_key, parse_api_keys, revoke_api_key
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
) -> None:
    """Make a key for AGENCY with the given scopes; print it once (only its hash is kept).
    Services read the keyring at start: restart the agency's service to use it."""
    from services.backbone.settings import BackboneSettings

    try:
        BackboneSettings().directory().get(agency)  # INFOSHARE_AGENCIES_FILE, if set
        doc = read_keyring_doc(keyring)
        key_id, secret = new_api_key(doc, agency=agency, scopes=scope, name=name)
        write_private(keyring, dump_keyring(doc))
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    err.print(f"issued {key_id} for {agency} ({', '.join(sorted(set(scope)))}); the key:")
    print(secret)  # alone on stdout, for a script to capture


@app.command("list")
def list_keys(keyring: Keyring) -> None:
    """The keyring's API keys: id, agency and scopes (never the key or its hash)."""
    try:
        keys = parse_api_keys(read_keyring_doc(keyring).get("agency_api_keys"))
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    if not keys:
        out.print("no narrower API keys (each agency's own token has every scope)")
    for key in keys:
        out.print(f"{key.key_id}  {key.agency}  {' '.join(sorted(key.scopes))}")


@app.command("revoke")
def revoke(
    keyring: Keyring, key_id: Annotated[str, typer.Argument(help="the key's id (see list)")]
) -> None:
    """Remove a key: it stops working when the agency's service restarts."""
    try:
        doc = read_keyring_doc(keyring)
        revoke_api_key(doc, key_id)
        write_private(keyring, dump_keyring(doc))
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    out.print(f"revoked {key_id}; restart the agency's service for it to take effect")
