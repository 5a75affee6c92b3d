"""Debian's Chromium driven by Playwright's sync API, one browser per test. Never
`playwright install`: `make test` installs /usr/bin/chromium, and a missing one fails the tests
instead of skipping them.

Why not one browser per session: the sync API keeps an asyncio loop marked as running in this
thread for as long as Playwright is up, and the shared fixtures seed the database with
`asyncio.run` (tests/conftest.py `run_db`), which refuses to run inside a running loop. So
Playwright starts after `live_server` has seeded its world and stops at the end of the test;
a browser test must not call `world.run(...)` while the browser is up."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.conftest import ARTIFACTS, LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture
def playwright(live_server: LiveServer) -> Iterator[Playwright]:
    # Depends on live_server only for the order: seed (asyncio.run) first, then Playwright.
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. "
            "Run `make browser-deps` (or `apt-get install chromium`); never `playwright install`.",
            pytrace=False,
        )
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
