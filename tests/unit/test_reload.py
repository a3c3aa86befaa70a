"""A protocol set changed on disk is applied only if it loads; a bad one leaves the last
good set in force and says why."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from consent.policy.load import DEFAULT_DIR, load_protocols
from consent.processor.handle import Context
from consent.processor.reload import ProtocolReloader
from services.backbone.directory import Directory
from services.backbone.keyring import Keyring
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics


@pytest.fixture
def setup(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry, keyring: Keyring
) -> tuple[Path, ProtocolReloader, Context]:
    folder = tmp_path / "protocols"
    shutil.copytree(DEFAULT_DIR, folder)
    ctx = Context(
        topics=Topics(),
        protocols=load_protocols(folder, directory=directory, schemas=schemas),
        schemas=schemas,
        pseudonym_keys=keyring.pseudonym,
        audit_key=keyring.require_audit_subject(),
        routing=keyring.require_routing(),
        directory=directory,
    )
    return folder, ProtocolReloader(folder, keyring), ctx


def _touch(path: Path, text: str) -> None:
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def test_nothing_changed_nothing_reloaded(setup: tuple[Path, ProtocolReloader, Context]) -> None:
    _, reload, ctx = setup
    assert reload(ctx) is None


def test_a_good_change_is_applied(setup: tuple[Path, ProtocolReloader, Context]) -> None:
    folder, reload, ctx = setup
    (folder / "early-help-attendance.yaml").unlink()
    fresh = reload(ctx)
    assert fresh is not None and len(fresh.protocols) == len(ctx.protocols) - 1


def test_a_bad_change_keeps_the_last_good_set_and_says_why(
    setup: tuple[Path, ProtocolReloader, Context], caplog: pytest.LogCaptureFixture
) -> None:
    folder, reload, ctx = setup
    target = folder / "public-health-attendance-analytics.yaml"
    _touch(target, target.read_text().replace("article9: i", "article9: zz"))
    assert reload(ctx) is None
    assert any("[lawful-basis]" in p for p in reload.last_problems)
    assert "NOT loaded; keeping the last good set" in caplog.text
    assert reload(ctx) is None  # reported once per change, not on every poll
