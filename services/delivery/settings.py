"""The delivery service's settings (``INFOSHARE_DELIVERY_*`` on top of the shared ones)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from services.backbone.settings import HttpSettings
from services.delivery.backoff import RetryPolicy


class DeliverySettings(HttpSettings):
    delivery_database_url: SecretStr = Field(
        SecretStr("sqlite:///infoshare-delivery.db"),
        description="SQLAlchemy URL of the notification log (SQLite or PostgreSQL; a secret: "
        "it may carry a password)",
    )
    delivery_public_url: str = Field(
        "",
        description="base URL recipients reach this service at, for id-only notifications' "
        "focus.url (empty: the URL is a path)",
    )
    delivery_webhook_allow_http_loopback: bool = Field(
        False,
        description="accept webhooks whose host is or resolves to a loopback address, http:// "
        "too if the host is a loopback address or localhost (tests, local trials)",
    )
    delivery_webhook_private_agencies: list[str] = Field(
        default_factory=list,
        description="recipient agencies whose webhooks may be on a private network (RFC 1918, "
        'fc00::/7, 100.64.0.0/10), as JSON: ["la-northshire"]. Never loopback (see above), '
        "link-local or a cloud metadata address",
    )
    delivery_webhook_timeout_s: float = Field(
        10.0, gt=0, description="per POST, the whole exchange"
    )
    delivery_retry_base_s: float = Field(1.0, gt=0, description="first retry within this")
    delivery_retry_factor: float = Field(2.0, ge=1, description="backoff multiplier")
    delivery_retry_cap_s: float = Field(600.0, gt=0, description="longest wait between tries")
    delivery_retry_horizon_s: float = Field(
        86400.0,
        gt=0,
        description="undelivered this long after becoming the head of its queue: dead-lettered",
    )
    delivery_breaker_failures: int = Field(
        5, ge=1, description="consecutive failures that open an endpoint's circuit breaker"
    )
    delivery_breaker_cooldown_s: float = Field(
        30.0, ge=0, description="how long an open breaker waits before one trial"
    )
    delivery_poll_s: float = Field(1.0, gt=0, description="longest idle wait of the workers")
    protocols_dir: Path | None = Field(
        None,
        description="directory of protocol YAML files, as the processor's (default: the "
        "bundled ones): each delivery is purged once its protocol rule's retention has run",
    )
    retention_purge_every_s: float = Field(
        86400.0,
        ge=0,
        description="purge deliveries held past their retention at start and this often "
        "(0: only when `infoshare retention purge` is run)",
    )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            base_s=min(self.delivery_retry_base_s, self.delivery_retry_cap_s),
            factor=self.delivery_retry_factor,
            cap_s=self.delivery_retry_cap_s,
            horizon_s=self.delivery_retry_horizon_s,
        )
