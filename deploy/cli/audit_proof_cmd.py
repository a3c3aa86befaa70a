"""``infoshare audit public-keys | prove | prove-growth | check-proof``: what an outside
verifier needs, and checking offline, with no secret, that one record is in the signed trail
and that the trail only grew between two checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from deploy.cli.terminal import fail, out

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from services.audit.chain import Checkpoint

TAMPERED, BAD_INPUT = 1, 2
DatabaseUrl = Annotated[
    str | None, typer.Option(help="the audit store (default: INFOSHARE_AUDIT_DATABASE_URL)")
]
CheckpointFile = Annotated[
    Path | None,
    typer.Option(
        help="checkpoint file kept outside the database (default: INFOSHARE_AUDIT_CHECKPOINT_FILE)"
    ),
]
OutFile = Annotated[Path | None, typer.Option("--out", help="write here (default: stdout)")]


def _write(doc: object, to: Path | None) -> None:
    text = orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"
    if to is None:
        print(text, end="")
    else:
        to.write_text(text, encoding="utf-8")
        out.print(f"written to {to}", highlight=False)


def public_keys_cmd(out_file: OutFile = None) -> None:
    """The audit trail's public signing keys (every one that signed a checkpoint, older
    ones included), for anyone who verifies proofs. Needs the keyring
    (INFOSHARE_KEYRING_FILE); the output holds nothing secret."""
    from services.audit.proof_doc import public_keys_document
    from services.backbone.errors import ConfigurationError
    from services.backbone.key_roles import Role
    from services.backbone.settings import BackboneSettings

    try:
        keyring = BackboneSettings().keyring(Role.AUDIT)
        keyring.require_audit_signing()
    except ConfigurationError as exc:
        raise fail(str(exc), BAD_INPUT) from None
    _write(public_keys_document(keyring.audit_verifying_keys()), out_file)


def prove_cmd(
    audit_id: Annotated[str, typer.Argument(help="the record's audit id")],
    size: Annotated[
        int | None, typer.Option(help="prove against the checkpoint of this many records")
    ] = None,
    database_url: DatabaseUrl = None,
    checkpoints: CheckpointFile = None,
    out_file: OutFile = None,
) -> None:
    """An RFC 9162 inclusion proof that the record AUDIT_ID is in the trail: the record, the
    newest signed checkpoint covering it (or the one of --size records) and the audit path
    to its root. Check it anywhere with `infoshare audit check-proof`. Exit 0, or 2 when no
    proof can be made (unknown id, no checkpoint yet, a store that disagrees)."""
    from services.audit.proving import prove

    _write(
        _from_store(database_url, checkpoints, lambda e, k: prove(e, audit_id, k, size=size)),
        out_file,
    )


def prove_growth_cmd(
    old: Annotated[int, typer.Option("--from", help="the older checkpoint's size (records)")],
    new: Annotated[
        int | None,
        typer.Option("--to", help="the newer checkpoint's size (default: the newest)"),
    ] = None,
    database_url: DatabaseUrl = None,
    checkpoints: CheckpointFile = None,
    out_file: OutFile = None,
) -> None:
    """An RFC 9162 consistency proof that the trail only grew between two signed
    checkpoints: the tree of --from records is the start of the tree of --to records.
    Check it anywhere with `infoshare audit check-proof`. Exit 0, or 2 when no proof can be
    made (no such checkpoint, a store that disagrees)."""
    from services.audit.proving import prove_growth

    doc = _from_store(database_url, checkpoints, lambda e, k: prove_growth(e, k, old, new))
    _write(doc, out_file)


def _from_store(
    database_url: str | None,
    checkpoints: Path | None,
    make: Callable[[Engine, list[Checkpoint]], dict[str, Any]],
) -> dict[str, Any]:
    """``make`` a proof from the audit store and every checkpoint known (store and file)."""
    from sqlalchemy.exc import SQLAlchemyError

    from services.audit.app import AuditSettings
    from services.audit.proving import ProofError
    from services.audit.sealing import file_checkpoints, stored_checkpoints
    from services.audit.store import AuditStore

    settings = AuditSettings()
    engine = AuditStore.engine_for(database_url or settings.audit_database_url.get_secret_value())
    cp_file = checkpoints or settings.audit_checkpoint_file
    try:
        known = stored_checkpoints(engine) + (file_checkpoints(cp_file) if cp_file else [])
        return make(engine, known)
    except ProofError as exc:
        raise fail(str(exc), BAD_INPUT) from None
    except SQLAlchemyError as exc:
        raise fail(f"cannot read the audit store: {type(exc).__name__}", BAD_INPUT) from None
    finally:
        engine.dispose()


def check_proof_cmd(
    proof: Annotated[
        Path, typer.Argument(help="the proof (from `infoshare audit prove` or `prove-growth`)")
    ],
    public_keys: Annotated[
        Path, typer.Option(help="the trail's public keys (from `infoshare audit public-keys`)")
    ],
) -> None:
    """Check a proof offline, with the public keys given: an inclusion proof (the record's
    hash, the audit path to the signed root, the checkpoint's signature) or a consistency
    proof (both checkpoints' signatures, and that the older tree is the start of the newer).
    No keyring, no store, no network. Exit 0 proved, 1 not proved (says why), 2 unreadable
    input."""
    from services.audit.proof_doc import check_document, proved, read_public_keys

    try:
        keys = read_public_keys(orjson.loads(public_keys.read_bytes()))
        doc = orjson.loads(proof.read_bytes())
    except (OSError, orjson.JSONDecodeError, ValueError) as exc:
        raise fail(f"cannot read the input: {exc}", BAD_INPUT) from None
    problem = check_document(doc, keys)
    if problem is not None:
        out.print(f"[bold red]NOT PROVED[/]: {problem}")
        raise typer.Exit(TAMPERED)
    out.print(f"[bold green]proved[/]: {proved(doc)}", highlight=False)
