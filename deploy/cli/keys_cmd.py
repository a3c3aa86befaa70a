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


# Who starts using a new key of each kind, and how.
_USERS = {
    "token": "restart the consent API (it reverses tokens), then the processor",
    "webhook_secret": "restart every delivery replica (each re-seals what it stored)",
    "audit_subject": "restart the audit service and the consent API, then the processor",
    "audit_chain": "restart the audit service",
    "audit_signing": "restart the audit service",
    "audit_id": "restart the processor",
    "trace_seal": "restart delivery (it opens seals), then the processor",
    "pseudonym": "restart the processor (the recipient's pseudonyms change from then on)",
}


@app.command("rotate")
def keys_rotate(
    keyring: KeyringFile,
    kind: Annotated[
        str,
        typer.Option(
            help="token, webhook_secret, audit_subject, audit_chain, audit_signing, "
            "audit_id, trace_seal or pseudonym (with --agency); routing is not rotated"
        ),
    ] = "token",
    agency: Annotated[
        str | None, typer.Option(help="the recipient whose pseudonym key rotates")
    ] = None,
) -> None:
    """Make a new active key of KIND; older ones stay to read with (tokens already given
    out, webhook secrets stored, audit records and checkpoints, trace seals in flight). The
    role files beside the keyring, if any, are written again."""
    from services.backbone.key_rotation import rotate_key

    try:
        key_id = rotate_key(keyring, kind, agency)
    except ConfigurationError as exc:
        raise fail(str(exc), 2) from None
    _refresh(keyring, f"rotated: new active {kind} key {key_id}")
    out.print(f"new active {kind} key {key_id}; {_USERS[kind]} to use it")


def _refresh(keyring: Path, done: str) -> None:
    """Write the role files beside ``keyring`` again; a failure says the keyring itself
    changed, so that nobody does it twice."""
    from services.backbone.key_split import refresh_role_files
    from services.backbone.settings import BackboneSettings

    try:
        refresh_role_files(keyring, [a.id for a in BackboneSettings().directory()])
    except (ConfigurationError, OSError) as exc:
        raise fail(
            f"the keyring is {done}, but the role files beside it were not written again "
            f"({exc}): run `infoshare keys split`",
            1,
        ) from None


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
    key_id: Annotated[str, typer.Option(help="the older key to remove (never an active one)")],
) -> None:
    """Remove an older key for good: what it made can never be read again (tokens reversed,
    seals opened, a child's older audit records found). Audit chain and signing keys are
    kept for good."""
    from services.backbone.key_rotation import retire_key

    try:
        kind = retire_key(keyring, key_id)
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    _refresh(keyring, f"without {kind} key {key_id}")  # gone from the services' files too
    out.print(f"{kind} key {key_id} retired")


@app.command("split")
def keys_split(
    keyring: KeyringFile,
    into: Annotated[Path, typer.Option(help="directory for the role files (mode 0700)")],
) -> None:
    """Write each role's part of the keyring to its own file (processor, consent, delivery,
    audit, and one per agency service): give each process its own, never the keyring."""
    from services.backbone.directory import load_directory
    from services.backbone.key_split import split_keyring

    try:
        written = split_keyring(keyring, into, [a.id for a in load_directory(None)])
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    for role, path in written.items():
        out.print(f"{role:<28} {path}")
    out.print("each process: INFOSHARE_KEYRING_FILE=<its file> (docs/security.md, keys by role)")


recipient = typer.Typer(
    help="A recipient's own key pair for fields encrypted to it (run on the recipient's side)",
    no_args_is_help=True,
)
app.add_typer(recipient, name="recipient")


@recipient.command("new")
def recipient_new(
    out_file: Annotated[Path, typer.Option("--out", help="private key file to write (0600)")],
    force: Annotated[bool, typer.Option(help="overwrite an existing key")] = False,
) -> None:
    """Make a key pair: the private half stays in OUT (the recipient's own service reads it:
    INFOSHARE_AGENCY_KEY_FILE); send the printed public half to the hub's operator."""
    from services.backbone.recipient_keys import new_recipient_key

    try:
        public = new_recipient_key(out_file, overwrite=force)
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    out.print(f"private key written to {out_file} (it never leaves the recipient)")
    out.print(f"public key, for `infoshare keys trust`: {public}", soft_wrap=True)


@app.command("trust")
def keys_trust(
    keyring: KeyringFile,
    agency: Annotated[str, typer.Option(help="the recipient agency's id")],
    public: Annotated[str, typer.Option(help="its public key, base64, as it sent it")],
) -> None:
    """Register a recipient's public key, so that protocols may encrypt fields to it."""
    from services.backbone.directory import load_directory
    from services.backbone.recipient_keys import trust_recipient

    try:
        load_directory(None).get(agency)
        replaced = trust_recipient(keyring, agency, public)
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    said = "replaced" if replaced else "registered"
    out.print(f"{agency}'s public key {said}; run `infoshare keys split` and restart the processor")


@app.command("agency-token")
def keys_agency_token(
    keyring: KeyringFile,
    agency: Annotated[str, typer.Option(help="the agency whose own token to renew")],
    expires_in: Annotated[int, typer.Option(min=1, max=366, help="days it lasts")] = 365,
) -> None:
    """Give an agency a new token of its own (every scope), in place of the old one, which
    stops working at once: written to agency-tokens/<agency>.token beside the keyring (0600)
    for the agency to collect over a secure channel. Running services take it up within a
    second."""
    from datetime import timedelta

    from deploy.cli.api_keys_cmd import save_keyring
    from services.backbone.keyring import new_agency_token, read_keyring_doc, write_private

    try:
        doc = read_keyring_doc(keyring)
        token = new_agency_token(doc, agency, ttl=timedelta(days=expires_in))
        save_keyring(keyring, doc, agency)
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    path = keyring.parent / "agency-tokens" / f"{agency}.token"
    write_private(path, token + "\n")
    out.print(f"{agency}'s new token is in {path}, for {expires_in} days", soft_wrap=True)
    out.print("the old one is refused")
