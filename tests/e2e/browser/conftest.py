"""Fixtures of the real-browser tests: Debian's Chromium driven by Playwright (one browser
per worker, a fresh context and page per test), axe-core's accessibility check, and
full-page screenshots.

The async API, on pytest-asyncio's session loop: the sync API marks its own event loop as
running in the main thread for as long as it is open, and every async test run after it in
the same process would then fail. Chromium and axe-core come from `infoshare browser fetch`
(make test runs it); where either is missing the tests fail, they are not skipped.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from deploy.devstack.browser import CHROMIUM, CHROMIUM_ARGS, FETCH_HINT, axe_script
from deploy.devstack.paths import default_cache_dir
from tests.e2e.browser import axe

SCREENSHOTS_ENV = "INFOSHARE_SCREENSHOTS_DIR"
# Long enough for a loaded two-core machine, short enough that a wrong selector fails soon.
TIMEOUT_MS = 15_000

AxeCheck = Callable[..., Awaitable[list[dict[str, Any]]]]
Screenshot = Callable[[Page, str], Awaitable[Path]]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium (/usr/bin/chromium, never a browser Playwright downloads), with a
    fresh profile of its own, for this worker's whole run."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing ({CHROMIUM}): {FETCH_HINT}", pytrace=False)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=list(CHROMIUM_ARGS)
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A page in a context of this test's own: no cookies or storage from another test."""
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield await context.new_page()
    finally:
        await context.close()


@pytest.fixture(scope="session")
def axe_js() -> str:
    """The text of the pinned axe-core's axe.min.js."""
    script = axe_script(default_cache_dir())
    if not script.exists():
        pytest.fail(f"axe-core is missing ({script}): {FETCH_HINT}", pytrace=False)
    return script.read_text(encoding="utf-8")


@pytest.fixture
def axe_violations(axe_js: str) -> AxeCheck:
    """``await axe_violations(page, impacts=("serious", "critical"))``: the page's
    accessibility violations of those impacts, as dicts of id, impact, help and targets."""

    async def check(page: Page, impacts: Sequence[str] = axe.BLOCKING) -> list[dict[str, Any]]:
        return await axe.violations(page, source=axe_js, impacts=impacts)

    return check


@pytest.fixture(scope="session")
def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """INFOSHARE_SCREENSHOTS_DIR (the README's images are refreshed from there), else a
    directory in pytest's temporary one."""
    given = os.environ.get(SCREENSHOTS_ENV)
    if not given:
        return tmp_path_factory.mktemp("screenshots")
    path = Path(given)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def screenshot(screenshots_dir: Path) -> Screenshot:
    """``await screenshot(page, name)``: the whole page as ``<dir>/<name>.png``."""

    async def take(page: Page, name: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise ValueError(f"not a plain file name: {name!r}")
        path = screenshots_dir / f"{name.removesuffix('.png')}.png"
        await page.screenshot(path=path, full_page=True)
        return path

    return take
