"""Which webhook URLs a subscription may name. HTTPS only: a notification may carry a
child's data. Plain HTTP only to this machine (loopback), and only when a setting allows
it, for tests and local trials.

Against server-side request forgery, a host that is an IP address must be a global one
(not private, loopback, link-local or reserved), and ``localhost`` is refused, unless the
loopback setting is on (then loopback only). DNS names are not yet resolved and pinned: a
name that resolves to an internal address is not caught here.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from services.backbone.hosts import LOOPBACK_NAMES, is_loopback
from services.delivery.errors import InvalidSubscription

MAX_URL = 2048


_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)


def _internal(host: str) -> bool:
    """Whether ``host`` names an address that is not on the public internet."""
    if host.lower().rstrip(".") in LOOPBACK_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        # 127.1, 2130706433, 0x7f.1: not canonical, yet resolvers take them for addresses.
        labels = host.rstrip(".").split(".")
        return all(_NUMERIC_LABEL.fullmatch(label) for label in labels)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


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
    loopback_allowed = allow_http_loopback and is_loopback(host)
    if parts.scheme == "http" and not loopback_allowed:
        raise InvalidSubscription(
            loc, "endpoint.https_required", "webhooks must use https (TLS protects the payload)"
        )
    if _internal(host) and not loopback_allowed:
        raise InvalidSubscription(
            loc, "endpoint.internal", "the endpoint must be an address on the public internet"
        )
    return url


def origin(url: str) -> str:
    """scheme://host:port."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def breaker_key(agency: str, url: str) -> str:
    """What one circuit breaker guards: an agency's endpoint origin. Per agency, so one
    agency's failing (or hostile) endpoint cannot stop pushes to another agency that
    names the same host."""
    return f"{agency} {origin(url)}"


def recipient_of(key: str) -> str:
    """The agency a ``breaker_key`` belongs to."""
    return key.split(" ", 1)[0]
