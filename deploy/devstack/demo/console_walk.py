"""``python -m deploy.devstack.demo.console_walk URL USER PASSWORD NHS_NUMBER``: time how long
a new IG officer takes to answer "who received what about this child, and why?" in the
console, following docs/console.md's three steps in Debian's Chromium. It types at about 8
characters a second and pauses 3 s to read each page. The clock runs from opening the
console's address to the report on screen; then it reads the table (6 s more).
Run it against `infoshare demo --stay`'s stack, with the URL and login the demo prints."""

from __future__ import annotations

import asyncio
import sys
import time

from playwright.async_api import async_playwright

from deploy.devstack.browser import CHROMIUM, CHROMIUM_ARGS

READ_S = 3.0
KEY_MS = 120


async def walk(url: str, user: str, password: str, nhs_number: str) -> str:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=list(CHROMIUM_ARGS)
        )
        page = await browser.new_page()
        started = time.monotonic()
        await page.goto(url)
        await asyncio.sleep(READ_S)
        await page.get_by_label("User name").type(user, delay=KEY_MS)
        await page.get_by_label("Password").type(password, delay=KEY_MS)
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_role("heading", name="Search disclosures").wait_for()
        await asyncio.sleep(READ_S)
        await page.get_by_label("Number or id").type(nhs_number, delay=KEY_MS)
        await page.get_by_role("button", name="Child's disclosure report").click()
        await page.get_by_role("heading", name="A child's disclosure report").wait_for()
        shown = time.monotonic() - started
        await asyncio.sleep(READ_S * 2)  # reading the table: who, what, why
        rows = await page.locator("tbody tr").count()
        recipients = await page.locator("tbody tr td:nth-child(4)").all_inner_texts()
        await browser.close()
    return (
        f"report on screen after {shown:.1f} s; read by {time.monotonic() - started:.1f} s; "
        f"{rows} decisions; recipients {sorted({r for r in recipients if r})}"
    )


def main() -> None:
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    print(asyncio.run(walk(*sys.argv[1:5])))


if __name__ == "__main__":
    main()
