"""``infoshare audit verify``: prove the audit trail unaltered with public material, against
anchors kept outside its store, or say where it was altered."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from deploy.cli.audit_proof_cmd import BAD_INPUT, TAMPERED, CheckpointFile, DatabaseUrl
from deploy.cli.terminal import err, fail, out

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from sqlalchemy import Engine

    from services.audit.anchoring import Anchor
    from services.audit.app import AuditSettings

T = TypeVar("T")


def verify_cmd(
    database_url: DatabaseUrl = None,
    checkpoints: CheckpointFile = None,
    file: Annotated[
        bool,
        typer.Option(
            help="the checkpoint file is an anchor (a missing one fails); --no-file: the topic "
            "alone, for a verifier away from the hub"
        ),
    ] = True,
    topic: Annotated[
        bool,
        typer.Option(
            help="read the anchor topic (audit.checkpoints) with the Kafka settings; "
            "--no-topic: the checkpoint file is the only anchor"
        ),
    ] = True,
    public_keys: Annotated[
        Path | None,
        typer.Option(
            help="the trail's public keys (`infoshare audit public-keys`); default: from the "
            "keyring, if one is configured"
        ),
    ] = None,
    witness: Annotated[
        str | None,
        typer.Option(help="a witness's URL: the checkpoint it last cosigned is an anchor too"),
    ] = None,
    witness_key: Annotated[
        str | None,
        typer.Option(
            help="the witness's public key (base64): its cosignature is required, and must verify"
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="a file this verifier keeps: walk only the records sealed since the head it "
            "holds (proving the trail only grew), then keep the new head there; made by the "
            "first run, replaced after each intact one; without it every record is walked"
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="processes that check records side by side, each a range of the trail "
            "(a trail under 10,000 records is walked in one); default: one per CPU",
        ),
    ] = None,
) -> None:
    """Recompute every record's hash, check every signed checkpoint (the database's, the
    checkpoint file's and the anchor topic's) with the public keys, and name the first
    record edited, deleted, reordered or inserted, a truncation, anchors that disagree, or
    records no anchor covers. Needs no secret: with the keyring (INFOSHARE_KEYRING_FILE) the
    keyed chain links are checked as well. With --resume, only the records sealed since the
    last intact run are walked (a full run now and then reads the older ones again). Exit 0
    intact, 1 tampered, 2 bad input."""
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from services.audit import resume as kept
    from services.audit.app import AuditSettings
    from services.audit.store import AuditStore
    from services.audit.verification import verify_trail

    try:
        settings = AuditSettings()
    except ValidationError as exc:
        where, why = exc.errors()[0]["loc"][0], exc.errors()[0]["msg"]
        raise fail(f"settings: {where}: {why}", BAD_INPUT) from None
    keys, chain_keys = _material(settings, public_keys)
    named = (checkpoints or settings.audit_checkpoint_file) if file else None
    read_anchors = _anchors(settings, named, topic)
    if witness_key and not witness:
        raise fail("--witness-key needs --witness (where the witness answers)", BAD_INPUT)
    cosigned = _cosigned(witness, witness_key) if witness else None

    def anchors() -> list[Anchor]:
        return [*read_anchors(), *([cosigned] if cosigned else [])]

    try:
        start = kept.load(resume) if resume is not None else None
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read --resume {resume}: {exc}", BAD_INPUT) from None
    engine = AuditStore.engine_for(database_url or settings.audit_database_url.get_secret_value())
    try:
        with _progress(engine, after=start.walked.size if start else 0) as counted:
            verdict = verify_trail(
                engine,
                public_keys=keys,
                anchors=anchors,
                chain_keys=chain_keys,
                resume=start,
                workers=workers or len(os.sched_getaffinity(0)),
                progress=counted,
            )
    except SQLAlchemyError as exc:
        raise fail(f"cannot read the audit store: {type(exc).__name__}", BAD_INPUT) from None
    finally:
        engine.dispose()
    if verdict.problem is not None:
        out.print(f"[bold red]TAMPERED[/]: {escape(verdict.problem)}")
        if verdict.failed == "chain":
            out.print(f"{verdict.records} record(s) before it verified")
        raise typer.Exit(TAMPERED)
    links = (
        "chain links checked"
        if verdict.links_checked
        else "chain links not checked (no keyring: the signed heads cover every record)"
    )
    walked = (
        f"records {verdict.resumed_at + 1}..{verdict.records} walked, the "
        f"{verdict.resumed_at} before them proved intact by an earlier run"
        if verdict.resumed_at
        else f"{verdict.records} record(s)"
    )
    out.print(
        f"[bold green]intact[/]: {walked}, hashes verified; "
        f"{verdict.checkpoints} signed checkpoint(s) agree; anchored outside the store up to "
        f"{verdict.anchored}; {links}; the alias, review and Merkle block indexes match",
        highlight=False,
    )
    if resume is not None and verdict.verified is not None:
        try:
            kept.save(resume, verdict.verified)
        except OSError as exc:
            raise fail(
                f"intact, but --resume {resume} cannot be written: {exc}", BAD_INPUT
            ) from None


def _material(
    settings: AuditSettings, public_keys: Path | None
) -> tuple[dict[str, Ed25519PublicKey], list[bytes]]:
    """The public keys (from the file, else the keyring) and, with a keyring, the chain
    keys; refuses (exit 2) when there are no public keys."""
    from services.audit.proof_doc import read_public_keys
    from services.backbone.errors import ConfigurationError
    from services.backbone.key_roles import Role

    keyring = None
    with contextlib.suppress(ConfigurationError):
        keyring = settings.keyring(Role.AUDIT)
    chain = [k.secret for k in keyring.keys_of("audit_chain")] if keyring else []
    if public_keys is not None:
        try:
            return read_public_keys(orjson.loads(public_keys.read_bytes())), chain
        except (OSError, ValueError) as exc:
            raise fail(f"cannot read the public keys: {exc}", BAD_INPUT) from None
    if keyring is None or keyring.audit_signing is None:
        raise fail(
            "no public keys: give --public-keys (from `infoshare audit public-keys`) or a "
            "keyring (INFOSHARE_KEYRING_FILE)",
            BAD_INPUT,
        )
    return keyring.audit_verifying_keys(), chain


def _cosigned(url: str, witness_key: str | None) -> Anchor:
    """The checkpoint the witness at ``url`` last cosigned, as an anchor that may lag the
    head; with ``witness_key``, its cosignature must verify (exit 1 if not)."""
    import base64
    import binascii

    import httpx
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from services.audit.anchoring import Anchor
    from services.audit.chain import Checkpoint
    from services.witness.core import cosignature_valid

    try:
        answer = httpx.get(url.rstrip("/") + "/latest", timeout=10)
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach the witness ({type(exc).__name__})", BAD_INPUT) from None
    if answer.status_code == 404:
        raise fail("the witness has cosigned nothing of this trail", TAMPERED)
    doc = answer.json()
    checkpoint = Checkpoint.from_json(doc["checkpoint"])
    if witness_key is not None:
        try:
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(witness_key))
        except (binascii.Error, ValueError):
            raise fail("--witness-key is not an Ed25519 public key (base64)", BAD_INPUT) from None
        if not cosignature_valid(checkpoint, bytes.fromhex(doc["cosignature"]), public):
            raise fail("the witness's cosignature does not verify with --witness-key", TAMPERED)
    return Anchor(f"the witness at {url}", [checkpoint], covers_head=False)


def _anchors(
    settings: AuditSettings, file: Path | None, topic: bool
) -> Callable[[], Sequence[Anchor]]:
    """The anchors, read again each time they are asked for."""
    from aiokafka.errors import KafkaError

    from services.audit.anchoring import file_anchor, topic_anchor
    from services.backbone.errors import BackboneError

    def read() -> list[Anchor]:
        found = [file_anchor(file)] if file is not None else []
        if topic:
            try:
                found.append(
                    asyncio.run(
                        topic_anchor(settings.kafka_access(), settings.topics().audit_checkpoints)
                    )
                )
            except (KafkaError, BackboneError, OSError) as exc:
                raise fail(
                    f"cannot read the anchor topic ({type(exc).__name__}); --no-topic to "
                    "verify against the checkpoint file alone",
                    BAD_INPUT,
                ) from None
        return found

    return read


@contextlib.contextmanager
def _progress(engine: Engine, *, after: int) -> Iterator[Callable[[int], None]]:
    """Counts records as they are verified, on stderr (a large trail takes minutes). Drawn
    when counted, never from a thread of its own: the walk forks its workers."""
    from sqlalchemy import func, select
    from sqlmodel import col

    from services.audit.models import AuditEntry

    with engine.connect() as conn:
        total = conn.execute(
            select(func.count()).select_from(AuditEntry).where(col(AuditEntry.seq) > after)
        ).scalar_one()
    columns: Any = (
        TextColumn("verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("records"),
        TimeRemainingColumn(),
    )
    quiet = total < 50_000
    with Progress(*columns, console=err, transient=True, disable=quiet, auto_refresh=False) as bar:
        task = bar.add_task("verify", total=total)

        def counted(walked: int) -> None:
            bar.update(task, completed=walked, refresh=True)

        yield counted
