"""Settings of the consent-and-policy processor (env prefix INFOSHARE_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.backbone.settings import BackboneSettings


class ProcessorSettings(BackboneSettings):
    protocols_dir: Path | None = Field(None, description="directory of protocol YAML files")
    transaction_timeout_ms: int = Field(
        60000,
        ge=1000,
        description="the broker aborts a batch's transaction still open after this long",
    )
    port: int = Field(
        8140, ge=0, le=65535, description="port of GET /metrics for Prometheus (0: none)"
    )
    host: str = Field("127.0.0.1", description="address GET /metrics listens on")
    batch_max: int = Field(500, ge=1, le=10000, description="records per transaction at most")
