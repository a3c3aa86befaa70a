"""Which webhook URLs a subscription may name. HTTPS only: a notification may carry a
child's data. Plain HTTP only to this machine (loopback), and only when a setting allows
it, for tests and local trials."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from services.delivery.errors import InvalidSubscription

MAX_URL = 2048
_LOOPBACK_NAMES = {"localhost"}


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(url: str, *, allow_http_loopback: bool) -> str:
    """The endpoint as given, if a subscription may push to it; else InvalidSubscription
    (which never quotes the URL)."""
    loc = ("endpoint",)
    if len(url) > MAX_URL:
        raise InvalidSubscription(loc, "endpoint.length", f"at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        raise InvalidSubscription(loc, "endpoint.url", "not a valid absolute URL") from None
    if not host or parts.scheme not in ("https", "http"):
        raise InvalidSubscription(loc, "endpoint.url", "an absolute https URL is required")
    if parts.username or parts.password:
        raise InvalidSubscription(loc, "endpoint.credentials", "no credentials in the URL")
    if parts.fragment:
        raise InvalidSubscription(loc, "endpoint.url", "no fragment in a webhook URL")
    if parts.scheme == "http" and not (allow_http_loopback and _is_loopback(host)):
        raise InvalidSubscription(
            loc, "endpoint.https_required", "webhooks must use https (TLS protects the payload)"
        )
    return url


def origin(url: str) -> str:
    """scheme://host:port: what one circuit breaker guards."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"
