"""What a verifier keeps to verify the trail again from where it last proved it intact
(``infoshare audit verify --resume FILE``): the signed checkpoint it ended on, where its
walk stood, and digests of what the derived indexes had to say of the records it walked.

A resumed verification proves that the trail only grew since: the checkpoint it ended on
is still in the store and its anchors, as signed, and the records after it extend that
very tree and chain to the signed heads after it. It does not read the records before it
again, so an edit made to them afterwards is found by the next full verification (without
``--resume``), as it is by any inclusion proof, whose signed root no longer matches. The
alias and review indexes are compared whole, against the digests kept here.

The file holds hashes and sequence numbers only, never what a record says. It is the
verifier's, not the hub's: kept outside the store, like an anchor.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from services.audit.chain import Walked

FORMAT = "infoshare-audit-verified/1"


def digests(items: Iterable[tuple[Any, ...]]) -> set[str]:
    """Each index entry (a tuple of strings) as a short digest: compared, never read."""
    return {hashlib.sha256(orjson.dumps(list(item))).hexdigest()[:32] for item in items}


@dataclass
class Verified:
    walked: Walked  # where the walk ended: a signed checkpoint's size
    signature: str  # the signature of the checkpoint it ended on
    links: set[str] = field(default_factory=set)  # digests of the alias links sealed
    reviews: set[str] = field(default_factory=set)  # digests of the reviews sealed
    since: dict[str, int] = field(default_factory=dict)  # signing key: the record it came in
    keyed: bool = True  # the chain links were checked (with the chain keys) up to the head

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT,
            "walked": asdict(self.walked),
            "signature": self.signature,
            "links": sorted(self.links),
            "reviews": sorted(self.reviews),
            "since": self.since,
            "keyed": self.keyed,
        }
        return orjson.dumps(doc)

    @classmethod
    def from_json(cls, raw: bytes) -> Verified:
        """ValueError naming what is wrong with a file that is not one of ours."""
        try:
            doc = orjson.loads(raw)
            if doc.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
            w = doc["walked"]
            return cls(
                walked=Walked(
                    int(w["size"]),
                    [(int(c), str(h)) for c, h in w["peaks"]],
                    str(w["chain_head"]),
                    int(w["key_at"]),
                ),
                signature=str(doc["signature"]),
                links=set(doc["links"]),
                reviews=set(doc["reviews"]),
                since={str(k): int(v) for k, v in doc["since"].items()},
                keyed=bool(doc["keyed"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a {FORMAT} file ({type(exc).__name__})") from None


def load(path: Path) -> Verified | None:
    """The state kept at ``path``; None if there is none yet (ValueError if unreadable)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    return Verified.from_json(raw)


def save(path: Path, state: Verified) -> None:
    """Replace the file at ``path`` whole (0600), or leave it as it was."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(state.to_json())
            out.flush()
            os.fsync(out.fileno())
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename survives a power cut too
    finally:
        os.close(directory)
