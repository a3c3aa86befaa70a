"""The witness service: ``POST /cosign`` a newer checkpoint of the audit trail with a
consistency proof from the last one cosigned, ``GET /latest`` the last one cosigned and its
cosignature. It runs apart from the hub with a key of its own (``infoshare witness key``),
trusts only the trail's public keys (``infoshare audit public-keys``), and keeps what it
cosigned in a state file of its own (0600, replaced atomically)."""

from __future__ import annotations

import base64
import hashlib
import threading
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from services.audit.chain import Checkpoint
from services.audit.proof_doc import read_public_keys
from services.backbone.errors import ConfigurationError
from services.backbone.http import WholeNumber, create_service_app
from services.backbone.keyring import write_private
from services.backbone.openapi_responses import answers
from services.backbone.settings import HttpSettings
from services.witness.core import Refused, Seen, cosign

HEX = r"^[0-9a-f]*$"
REFUSED = "refused: not the trail's signature, went back, forked, or no proof it grew"


class WitnessSettings(HttpSettings):
    witness_key_file: Path = Field(description="the witness's own Ed25519 key (keep it secret)")
    witness_log_keys: Path = Field(
        description="the audit trail's public keys (`infoshare audit public-keys`)"
    )
    witness_state_file: Path = Field(description="what the witness last cosigned (0600)")


class CheckpointIn(BaseModel):
    tree_size: WholeNumber = Field(ge=1, le=2**62)  # JSON true is not the number 1
    root: str = Field(min_length=64, max_length=64, pattern=HEX)
    chain_head: str = Field(min_length=64, max_length=64, pattern=HEX)
    created_at: str = Field(max_length=64)
    key_id: str = Field(max_length=128)
    signature: str = Field(min_length=128, max_length=128, pattern=HEX)


class CosignIn(BaseModel):
    checkpoint: CheckpointIn
    consistency: list[str] = Field(
        default_factory=list, max_length=128, description="RFC 9162 consistency proof, hex"
    )


class Cosigned(BaseModel):
    checkpoint: CheckpointIn
    witness_key_id: str
    cosignature: str = Field(description="Ed25519 over the checkpoint's signed bytes, hex")


def witness_key_id(key: Ed25519PrivateKey) -> str:
    public = key.public_key().public_bytes_raw()
    return "witness-" + hashlib.sha256(public).hexdigest()[:16]


def load_witness_key(path: Path) -> Ed25519PrivateKey:
    try:
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(path.read_text().strip()))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"the witness key {path} cannot be read: {exc}") from None


def new_witness_key(path: Path) -> str:
    """Write a new witness key (0600); returns its public half, base64."""
    key = Ed25519PrivateKey.generate()
    write_private(path, base64.b64encode(key.private_bytes_raw()).decode() + "\n")
    return base64.b64encode(key.public_key().public_bytes_raw()).decode()


def create_app(settings: WitnessSettings | None = None) -> FastAPI:
    settings = settings or WitnessSettings()
    key = load_witness_key(settings.witness_key_file)
    try:
        log_keys = read_public_keys(orjson.loads(settings.witness_log_keys.read_bytes()))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"the audit trail's public keys: {exc}") from None
    state = settings.witness_state_file
    key_id = witness_key_id(key)
    lock = threading.Lock()

    def last() -> dict[str, Any] | None:
        return orjson.loads(state.read_bytes()) if state.exists() else None

    app = create_service_app(
        title="infoshare: audit witness",
        description="Cosigns the audit trail's checkpoints when they only grow.",
        max_body_bytes=64 * 1024,
        health=lambda: {"cosigned": (last() or {}).get("checkpoint", {}).get("tree_size", 0)},
    )

    @app.post(
        "/cosign",
        response_model=Cosigned,
        tags=["witness"],
        summary="Cosign a checkpoint that grew from the last one cosigned",
        responses=answers(
            {409: "refused: not the trail's signature, went back, forked, or no proof"}
        ),
    )
    def cosign_route(body: CosignIn) -> Cosigned:
        checkpoint = Checkpoint.from_json(body.checkpoint.model_dump())
        with lock:
            before = last()
            seen = (
                Seen(before["checkpoint"]["tree_size"], before["checkpoint"]["root"])
                if before
                else Seen()
            )
            try:
                proof = [bytes.fromhex(p) for p in body.consistency]
                signature = cosign(checkpoint, proof, seen=seen, log_keys=log_keys, key=key)
            except (Refused, ValueError) as exc:
                raise HTTPException(409, detail=str(exc)) from None
            answer = Cosigned(
                checkpoint=body.checkpoint, witness_key_id=key_id, cosignature=signature.hex()
            )
            write_private(state, orjson.dumps(answer.model_dump()).decode())
        return answer

    @app.get(
        "/latest",
        response_model=Cosigned,
        tags=["witness"],
        summary="The last checkpoint cosigned, with its cosignature",
        responses=answers({404: "nothing cosigned yet"}),
    )
    def latest() -> Cosigned:
        found = last()
        if found is None:
            raise HTTPException(404, detail="nothing cosigned yet")
        return Cosigned.model_validate(found)

    return app
