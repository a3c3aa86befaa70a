"""Protocol sets change while the processor runs: a new set is checked in full and applied
between batches only if it loads; otherwise the processor keeps its last good set and says
why, problem by problem."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from consent.policy.load import DEFAULT_DIR, check_directory
from consent.processor.handle import Context
from services.backbone.errors import ConfigurationError
from services.backbone.keyring import Keyring

log = logging.getLogger(__name__)


def signature(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a protocol file is added, removed or edited."""
    return tuple(
        (p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(directory.glob("*.yaml"))
    )


class ProtocolReloader:
    def __init__(self, directory: Path | None, keyring: Keyring) -> None:
        self.directory = directory or DEFAULT_DIR
        self.keyring = keyring
        self.seen = signature(self.directory)
        self.last_problems: list[str] = []

    def __call__(self, ctx: Context) -> Context | None:
        """A context with the new set, or None if nothing changed or the new set is bad."""
        now = signature(self.directory)
        if now == self.seen:
            return None
        self.seen = now
        checked, problems = check_directory(
            self.directory, directory=ctx.directory, schemas=ctx.schemas
        )
        self.last_problems = [str(p) for p in problems if not p.warning]
        if checked is None:
            log.error(
                "protocol set in %s NOT loaded; keeping the last good set (%d protocols):",
                self.directory,
                len(ctx.protocols),
            )
            for line in self.last_problems:
                log.error("  %s", line)
            return None
        try:
            fresh = Context.from_keyring(
                topics=ctx.topics,
                protocols=checked.protocols,
                schemas=ctx.schemas,
                directory=ctx.directory,
                keyring=self.keyring,
            )
        except ConfigurationError as exc:
            self.last_problems = [str(exc)]
            log.error("protocol set NOT loaded; keeping the last good set: %s", exc)
            return None
        log.info("protocol set reloaded: %s", ", ".join(sorted(p.ref for p in checked.protocols)))
        return fresh


Reloader = Callable[[Context], Context | None]
