"""An agency's view of what it received: fields the protocol encrypted to this agency
(``env1.`` and ``hpke1.`` values, see services/backbone/sealed.py) opened with its private key.

The hub cannot open them; the agency service, holding the agency's key, can. A value that
does not open (another recipient's, or altered) stays sealed and is listed."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from services.agency.sealed import DataKeyCache, open_sealed
from services.backbone.errors import ConfigurationError
from services.backbone.sealed import SealError, is_sealed


def load_private_key(path: Path) -> X25519PrivateKey:
    """An agency's X25519 private key: base64 of its 32 raw bytes (``infoshare keys
    generate`` writes ``agency-keys/<agency>.key``)."""
    try:
        raw = base64.b64decode(path.read_text(encoding="utf-8").strip(), validate=True)
        return X25519PrivateKey.from_private_bytes(raw)
    except OSError as exc:
        raise ConfigurationError(f"cannot read the agency key {path}: {exc.strerror}") from None
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{path} is not a base64 X25519 private key") from None


def open_fields(
    data: dict[str, Any],
    *,
    agency: str,
    key: X25519PrivateKey | None,
    cache: DataKeyCache | None = None,
) -> tuple[dict[str, Any], list[str], list[str]]:
    """(data with sealed values opened, paths opened, paths left sealed). ``cache`` keeps
    unwrapped data keys between calls."""
    keys = cache if cache is not None else DataKeyCache()
    opened: list[str] = []
    sealed: list[str] = []

    def visit(path: str, value: str) -> str:
        if key is None:
            sealed.append(path)
            return value
        try:
            clear = open_sealed(key, recipient=agency, path=path, sealed=value, cache=keys)
        except SealError:
            sealed.append(path)
            return value
        opened.append(path)
        return clear

    return _walk(data, "", visit), sorted(set(opened)), sorted(set(sealed))


def _walk(node: Any, path: str, visit: Callable[[str, str], str]) -> Any:
    if isinstance(node, dict):
        return {k: _walk(v, f"{path}.{k}" if path else k, visit) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v, f"{path}[*]", visit) for v in node]
    if isinstance(node, str) and is_sealed(node):
        return visit(path, node)
    return node
