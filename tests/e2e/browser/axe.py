"""axe-core run in the page a test has open: the accessibility violations it finds, as
plain dicts a test can assert on and print."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from playwright.async_api import Page

# Serious and critical are what WCAG failures a person meets are marked (missing labels,
# images without text, too little contrast); minor and moderate are mostly best practice.
BLOCKING = ("serious", "critical")

_RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    targets: v.nodes.map((n) => n.target),
  }));
}"""


async def violations(
    page: Page, *, source: str, impacts: Sequence[str] = BLOCKING
) -> list[dict[str, Any]]:
    """Inject axe-core (``source``, the text of its axe.min.js) into ``page`` as it is
    now, run every rule on the whole document, and return the violations of the given
    impacts: each a dict of ``id``, ``impact``, ``help`` and ``targets`` (one CSS selector
    path a node)."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        # Evaluated, not added as a <script> (page.add_script_tag): a page whose
        # Content-Security-Policy forbids inline scripts (a hardened page's may) refuses
        # the tag but not Playwright's own evaluation.
        await page.evaluate(source + "\n;undefined")
    found: list[dict[str, Any]] = await page.evaluate(_RUN)
    return [v for v in found if v["impact"] in impacts]
