"""``infoshare keys``: the keyring (routing, pseudonym, token and audit keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deploy.cli import api_keys_cmd
from deploy.cli.terminal import fail, out
from services.backbone.errors import ConfigurationError

app = typer.Typer(
    help="Manage the keyring (routing, audit and pseudonym keys)", no_args_is_help=True
)
app.add_typer(api_keys_cmd.app, name="api-key")
KeyringFile = Annotated[Path, typer.Option(help="the keyring file", exists=True)]


@app.command("generate")
def keys_generate(
    out_file: Annotated[Path, typer.Option("--out", help="keyring file to write (mode 0600)")],
    force: Annotated[bool, typer.Option(help="overwrite an existing keyring")] = False,
) -> None:
    """Write a keyring with fresh random keys for every agency in the directory."""
    from services.backbone.directory import load_directory
    from services.backbone.keyring import generate_keyring

    try:
        generate_keyring(out_file, [a.id for a in load_directory(None)], overwrite=force)
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    out.print(f"keyring written to {out_file} (keep it secret; never commit it)")
    out.print(
        f"each agency's delivery API token: {out_file.parent / 'agency-tokens'}/<agency>.token "
        "(the keyring holds only their hashes)"
    )


@app.command("rotate")
def keys_rotate(keyring: KeyringFile) -> None:
    """Make a new active token key; older ones stay to reverse tokens already given out."""
    from services.backbone.keyring import rotate_token_key

    try:
        key_id = rotate_token_key(keyring)
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    out.print(f"new active token key {key_id}; restart the processor to use it")


@app.command("add-audit")
def keys_add_audit(keyring: KeyringFile) -> None:
    """Add the audit trail's chain and signing keys to an older keyring, keeping every
    other key (regenerating would change every pseudonym)."""
    from services.backbone.keyring import add_audit_keys

    try:
        added = add_audit_keys(keyring)
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    if added:
        out.print(f"added {', '.join(added)}; restart the audit service to use them")
    else:
        out.print("the keyring has its audit keys already; nothing changed")


@app.command("retire")
def keys_retire(
    keyring: KeyringFile,
    key_id: Annotated[str, typer.Option(help="the inactive token key to remove")],
) -> None:
    """Remove an old token key: tokens made with it can never be reversed again."""
    from services.backbone.keyring import retire_token_key

    try:
        retire_token_key(keyring, key_id)
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    out.print(f"token key {key_id} retired")
