"""The audit trail in a real browser: times shown in the viewer's own format by static/time.js
(the UTC text kept as a tooltip) with no console error under the strict CSP, and at 375 px the
table scrolls in its wrapper while the page itself does not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.browser.test_dashboard import sign_in
from tests.conftest import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_the_trail_reads_at_375_px_with_local_times(
    page: Page, live_server: LiveServer, artifacts: Path
) -> None:
    errors: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", console)
    page.set_viewport_size({"width": 375, "height": 800})
    base, world = live_server.url, live_server.world
    sign_in(page, base, world.admin)  # the trail's first event
    page.goto(f"{base}/audit?event=sign_in.succeeded")
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()

    when = page.locator("table.audit time").first
    expect(when).to_have_attribute("title", re.compile(r" UTC$"))
    assert not when.inner_text().endswith("UTC")  # the viewer's format, not the server's
    box = when.bounding_box()
    assert box is not None and box["height"] < 30  # one line

    widths = page.evaluate(
        """() => {
            const wrapper = document.querySelector(".table-scroll");
            return {page: document.documentElement.scrollWidth, wrapper: wrapper.clientWidth,
                    table: wrapper.scrollWidth};
        }"""
    )
    assert widths["page"] <= 375, widths
    assert widths["table"] > widths["wrapper"], widths  # the table scrolls, inside its wrapper
    page.screenshot(path=str(artifacts / "audit-375.png"), full_page=True)
    assert errors == []
