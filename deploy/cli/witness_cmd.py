"""``infoshare witness``: a witness of the audit trail, run apart from the hub with a key of
its own (services/witness)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deploy.cli.terminal import fail, out

app = typer.Typer(help="A witness that cosigns the audit trail as it grows", no_args_is_help=True)


@app.command("key")
def key_cmd(
    out_file: Annotated[Path, typer.Option("--out", help="the witness's key file (0600)")],
) -> None:
    """Make the witness's own Ed25519 key; print its public half, which verifiers give
    `infoshare audit verify --witness-key`."""
    from services.witness.app import new_witness_key

    if out_file.exists():
        raise fail(f"{out_file} exists; a witness keeps its key", 2)
    public = new_witness_key(out_file)
    out.print(f"witness key written to {out_file}; its public key:")
    print(public)


@app.command("serve")
def serve_cmd(
    key: Annotated[Path, typer.Option(help="the witness's key (`infoshare witness key`)")],
    log_keys: Annotated[
        Path, typer.Option(help="the audit trail's public keys (`infoshare audit public-keys`)")
    ],
    state: Annotated[Path, typer.Option(help="where the witness keeps what it cosigned")],
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8170,
) -> None:
    """Serve `POST /cosign` and `GET /latest` until Ctrl-C. Point the audit service at it
    with INFOSHARE_AUDIT_WITNESS_URL."""
    import uvicorn

    from services.backbone.errors import ConfigurationError
    from services.witness.app import WitnessSettings, create_app

    try:
        witness = create_app(
            WitnessSettings(
                witness_key_file=key, witness_log_keys=log_keys, witness_state_file=state
            )
        )
    except ConfigurationError as exc:
        raise fail(str(exc), 2) from None
    uvicorn.run(witness, host=host, port=port, log_level="warning", access_log=False)
