"""Which webhook URLs a subscription may name. HTTPS only: a notification may carry a
child's data. Plain HTTP only to this machine (loopback), and only when a setting allows
it, for tests and local trials.

Against server-side request forgery, a host that is an IP address must be a public one
(addresses.py says which are not, and which a recipient may be allowed), and ``localhost``
is a loopback address. This is the check of the URL alone; a host name is resolved and
every address judged by resolving.py, when the subscription is made and before every push.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

from services.backbone.hosts import LOOPBACK_NAMES, is_loopback
from services.delivery.addresses import AddressKind, allowed, kind_of, parse_address
from services.delivery.errors import InvalidSubscription

MAX_URL = 2048


_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)


def _literal_kind(host: str) -> AddressKind | None:
    """What makes ``host``, if it is an address or ``localhost``, not a public address."""
    if host.lower().rstrip(".") in LOOPBACK_NAMES:
        return AddressKind.LOOPBACK
    ip = parse_address(host)
    if ip is None:
        # 127.1, 2130706433, 0x7f.1: not canonical, yet resolvers take them for addresses.
        labels = host.rstrip(".").split(".")
        numeric = all(_NUMERIC_LABEL.fullmatch(label) for label in labels)
        return AddressKind.RESERVED if numeric else None
    return kind_of(ip)


def check_endpoint(url: str, *, allow_http_loopback: bool, allow_private: bool = False) -> str:
    """The endpoint as given, if a subscription may push to it; else InvalidSubscription
    (which never quotes the URL). ``allow_private``: this recipient may name a private
    network's address."""
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
    kind = _literal_kind(host)
    if not allowed(kind, loopback=allow_http_loopback, private=allow_private):
        raise InvalidSubscription(
            loc,
            "endpoint.internal",
            f"the endpoint is {kind}: webhooks go to the public internet only",
        )
    return url


@functools.lru_cache(maxsize=4096)  # twice a push: pure, cached
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
