"""The browser plumbing itself, on pages a real local HTTP server serves: Chromium loads
them, a click and a link work, a screenshot is written, and the accessibility check finds
the faults planted in a bad page and none in a good one (so it can fail)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.async_api import Page, expect

from deploy.devstack.ports import free_listen_port
from tests.e2e.browser.conftest import AxeCheck, Screenshot

pytestmark = pytest.mark.e2e

GOOD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Plumbing</title></head>
<body><main>
<h1>Plumbing</h1>
<button id="reveal" type="button">Show details</button>
<p id="details" hidden>The details, shown.</p>
<p><a href="/next">Next page</a></p>
</main>
<script>
document.getElementById("reveal").addEventListener("click", () => {
  document.getElementById("details").hidden = false;
});
</script>
</body></html>"""

NEXT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Next</title></head>
<body><main><h1>The next page</h1></main></body></html>"""

# An image with no text alternative and a text box with no label: axe marks both critical.
BAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bad</title></head>
<body><main>
<h1>Bad page</h1>
<img src="/next" width="10" height="10">
<form><input type="text" name="nhs_number"></form>
</main></body></html>"""

PAGES = {"/": GOOD, "/next": NEXT, "/bad": BAD, "/strict": BAD}
# Served with a policy that forbids inline scripts, as a hardened console would be.
STRICT_CSP = {"/strict": "default-src 'self'; script-src 'self'"}


def _handler(pages: Mapping[str, str]) -> type[BaseHTTPRequestHandler]:
    class Pages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path)
            self.send_response(200 if body is not None else 404)
            data = (body or "not found").encode()
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            if self.path in STRICT_CSP:
                self.send_header("Content-Security-Policy", STRICT_CSP[self.path])
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep the test's output to what it asserts

    return Pages


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """The pages above, served on loopback by a real HTTP server until the module ends."""
    server = ThreadingHTTPServer(("127.0.0.1", free_listen_port()), _handler(PAGES))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


async def test_click_and_link_work_in_chromium(page: Page, site: str) -> None:
    await page.goto(f"{site}/")
    await expect(page).to_have_title("Plumbing")
    details = page.locator("#details")
    await expect(details).to_be_hidden()
    await page.get_by_role("button", name="Show details").click()
    await expect(details).to_be_visible()
    await expect(details).to_have_text("The details, shown.")
    await page.get_by_role("link", name="Next page").click()
    await expect(page).to_have_url(f"{site}/next")
    await expect(page.get_by_role("heading", level=1)).to_have_text("The next page")


async def test_screenshot_is_a_full_page_png(page: Page, site: str, screenshot: Screenshot) -> None:
    await page.goto(f"{site}/")
    path = await screenshot(page, "browser-plumbing")
    assert path.name == "browser-plumbing.png"
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


async def test_axe_finds_the_planted_faults(
    page: Page, site: str, axe_violations: AxeCheck
) -> None:
    await page.goto(f"{site}/bad")
    found = {v["id"]: v for v in await axe_violations(page)}
    assert {"image-alt", "label"} <= found.keys(), found
    assert found["image-alt"]["targets"] == [["img"]]
    assert found["label"]["targets"] == [["input"]]
    assert all(v["impact"] in ("serious", "critical") for v in found.values())
    assert all(v["help"] for v in found.values())


async def test_axe_runs_under_a_strict_content_security_policy(
    page: Page, site: str, axe_violations: AxeCheck
) -> None:
    await page.goto(f"{site}/strict")
    assert {"image-alt", "label"} <= {v["id"] for v in await axe_violations(page)}


async def test_axe_passes_a_good_page(page: Page, site: str, axe_violations: AxeCheck) -> None:
    await page.goto(f"{site}/")
    await page.get_by_role("button", name="Show details").click()
    assert await axe_violations(page) == []
    # The impacts asked for are the ones returned: none asked, none returned, even here.
    await page.goto(f"{site}/bad")
    assert await axe_violations(page, impacts=()) == []
