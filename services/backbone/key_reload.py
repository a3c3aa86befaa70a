"""A process's keys, read again when their file changes: a revoked or expired API key
stops working within a second, with no restart. A file that no longer loads (half
written, or broken by hand) is refused and the keys already held stay in force, said in
the log once per change."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from services.backbone.errors import ConfigurationError
from services.backbone.keyring import Keyring

log = logging.getLogger(__name__)


class KeyringSource:
    def __init__(
        self,
        load: Callable[[], Keyring],
        path: Path | None,
        *,
        every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._path = path
        self._every_s = every_s
        self._clock = clock
        self._keyring = load()
        self._seen = self._stamp()
        self._checked = clock()

    def _stamp(self) -> tuple[int, int, int] | None:
        if self._path is None:
            return None  # keys given as a variable: they change with a restart only
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def current(self) -> Keyring:
        """The keys as the file says now (looked at no more than once per ``every_s``)."""
        now = self._clock()
        if now - self._checked < self._every_s:
            return self._keyring
        self._checked = now
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return self._keyring
        self._seen = stamp
        try:
            self._keyring = self._load()
        except ConfigurationError as exc:
            log.error("the keyring file changed but does not load (%s); keeping the keys held", exc)
        return self._keyring
