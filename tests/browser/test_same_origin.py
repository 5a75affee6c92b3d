"""No page of Grantly's loads anything from another origin, so each works offline and runs no
one else's script: every request the browser makes for /api/docs, the sign-in page, the
consent page and the dashboard goes to Grantly, and the pages' Content-Security-Policy refuses
nothing they need. Swagger UI really renders the API's operations from Grantly's own copy."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Request, expect

from tests.browser.test_dashboard import sign_in
from tests.conftest import LiveServer, authorize_url

pytestmark = [pytest.mark.browser, pytest.mark.live]


class Recorder:
    """Every request of the context's pages, and every console error (a CSP refusal)."""

    def __init__(self, context: BrowserContext) -> None:
        self.requests: list[str] = []
        self.errors: list[str] = []
        context.on("request", self._request)
        context.on("console", self._console)

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location.get('url')})")

    def elsewhere(self, base: str) -> list[str]:
        origin = urlsplit(base)
        return [
            url
            for url in self.requests
            if (urlsplit(url).scheme, urlsplit(url).netloc) != (origin.scheme, origin.netloc)
        ]


def _visit(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    page.wait_for_load_state("networkidle")


def test_swagger_ui_renders_the_api_from_grantly_alone(
    context: BrowserContext, page: Page, live_server: LiveServer
) -> None:
    recorder = Recorder(context)
    base = live_server.url
    _visit(page, f"{base}/api/docs")
    operation = page.locator(".opblock-summary-path", has_text="/api/v1/me")
    expect(operation.first).to_be_visible()
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() >= 5
    # The description was read: no "Unable to render this definition" error box.
    expect(page.locator(".errors-wrapper")).to_have_count(0)

    assert f"{base}/api/openapi.json" in recorder.requests
    assert any(url.startswith(f"{base}/api/docs/assets/") for url in recorder.requests)
    assert recorder.elsewhere(base) == [], recorder.requests
    assert recorder.errors == []


def test_the_sign_in_consent_and_dashboard_pages_load_nothing_from_elsewhere(
    context: BrowserContext, page: Page, live_server: LiveServer
) -> None:
    recorder = Recorder(context)
    base, world = live_server.url, live_server.world
    _visit(page, f"{base}/login")
    sign_in(page, base, world.admin)

    page.goto(authorize_url(base, world.app, scope="read", state="s"))
    expect(page.get_by_role("button", name="Allow")).to_be_visible()
    page.wait_for_load_state("networkidle")

    for path in (
        "/",
        "/oauth/applications",
        "/oauth/applications/new",
        f"/oauth/applications/{world.app.id}",
        f"/oauth/applications/{world.app.id}/edit",
        "/oauth/authorized_applications",
        "/api_keys",
        "/audit",
        "/people",
        f"/people/{world.employee.id}",
        "/account/password",
    ):
        _visit(page, base + path)

    visited = {urlsplit(url).path for url in recorder.requests}
    assert {"/login", "/oauth/authorize", "/static/grantly.css", "/audit"} <= visited, visited
    assert recorder.elsewhere(base) == [], recorder.requests
    assert recorder.errors == []
