"""``infoshare keys split``: the operator's keyring cut into one file per role, each
holding only what that role needs (key_roles.py), written readable by the owner only."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from services.backbone.key_roles import Role, role_doc, role_file_name
from services.backbone.keyring import dump_keyring, parse_keyring, read_keyring_doc, write_private


def split_keyring(keyring: Path, into: Path, agencies: Iterable[str]) -> dict[str, Path]:
    """Write each role's file into ``into`` (one per agency service); returns them by
    role (``agency:<id>`` for an agency's)."""
    doc = read_keyring_doc(keyring)  # checked whole first: never split a keyring that is bad
    into.mkdir(parents=True, exist_ok=True, mode=0o700)
    wanted: list[tuple[str, Role, str | None]] = [
        (str(role), role, None) for role in Role if role is not Role.AGENCY
    ]
    wanted += [(f"agency:{a}", Role.AGENCY, a) for a in agencies]
    written = {}
    for name, role, agency in wanted:
        part = role_doc(doc, role, agency)
        parse_keyring(part)  # each part loads on its own
        path = into / role_file_name(role, agency)
        write_private(path, dump_keyring(part))
        written[name] = path
    return written


def refresh_role_files(keyring: Path, agencies: Iterable[str]) -> bool:
    """Write the role files beside ``keyring`` again, if it has any (the local stack keeps
    them there): a change to the keyring reaches the running services, which read their
    file again when it changes. Whether there were any."""
    if not any(keyring.parent.glob("*.keys.yaml")):
        return False
    split_keyring(keyring, keyring.parent, agencies)
    return True
