"""Every page in a real browser at 1280 px and at 375 px wide (issue 14): none scrolls sideways
(a wide table scrolls inside its own box), no id or code wraps one character per line, and
each is photographed. `make screenshots` writes the pictures to docs/screenshots/ (the README
shows four of them); `make test` writes them under test-artifacts/screenshots/.

The pages are reached as a person reaches them, with a world worth looking at: a second
application, a grant of each kind, an API key, audit events."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from grantly.oauth import pkce
from tests.browser.test_dashboard import sign_in
from tests.conftest import ARTIFACTS, LiveServer, Person, authorize_url, hidden_fields
from tests.conftest import sign_in as login

pytestmark = [pytest.mark.browser, pytest.mark.live]

WIDTHS = (1280, 375)
SCREENSHOTS = Path(os.environ.get("GRANTLY_SCREENSHOTS") or ARTIFACTS / "screenshots")

# No text stands as a column of a few characters per line (an id squeezed into a narrow
# cell): a block of more than two lines holding fewer than this many characters per line.
_FEWEST_CHARACTERS_PER_LINE = 6
_LAYOUT_PROBLEMS = """(fewest) => {
  const problems = [];
  const root = document.documentElement;
  if (root.scrollWidth > window.innerWidth + 1) {
    const wide = [...document.querySelectorAll("body *")]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
      .slice(-3).map((e) => e.tagName.toLowerCase() + (e.className ? "." + e.className : ""));
    problems.push(`page is ${root.scrollWidth}px wide in a ${window.innerWidth}px window: ${wide}`);
  }
  // Each text of the page: how many lines it is laid out in (distinct line boxes).
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    if (text.length < 2) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
    const lines = tops.size;
    if (lines > 2 && text.length / lines < fewest) {
      const where = node.parentElement.tagName.toLowerCase();
      problems.push(`${where} "${text.slice(0, 30)}" stands in ${lines} lines`);
    }
  }
  return problems;
}"""


@dataclass(frozen=True)
class Shot:
    name: str
    reach: Callable[[Page], None]  # from a signed-in (or signed-out) page, get there
    who: str = "admin"  # admin, employee, nobody, or admin-without-javascript


def _goto(path: str, status: int = 200) -> Callable[[Page], None]:
    def reach(page: Page) -> None:
        response = page.goto(BASE[0] + path)
        assert response is not None and response.status == status, (path, response)

    return reach


BASE: list[str] = [""]  # the live server's URL, set by the test


def _people(server: LiveServer) -> dict[str, Person]:
    world = server.world
    return {"admin": world.admin, "employee": world.employee}


LOOPBACK_CALLBACK = "http://127.0.0.1:8765/callback"  # registered; nothing listens there


def _grant(page: Page, server: LiveServer, **extra: str) -> None:
    """Allow on the consent page, then exchange the code the browser was sent back with (a
    grant is listed once it has a token)."""
    app = server.world.app
    # A page of its own: the browser's failed navigation to the callback (nothing listens
    # there) must not interrupt the next grant's.
    page = page.context.new_page()
    sent_back: list[str] = []
    page.on(
        "request",
        lambda r: sent_back.append(r.url) if r.url.startswith(LOOPBACK_CALLBACK) else None,
    )
    page.goto(authorize_url(BASE[0], app, scope="read", redirect_uri=LOOPBACK_CALLBACK, **extra))
    page.get_by_role("button", name="Allow").click()
    for _ in range(50):
        if sent_back:
            break
        page.wait_for_timeout(100)
    code = parse_qs(urlsplit(sent_back[0]).query)["code"][0]
    page.close()
    token = httpx.post(
        f"{BASE[0]}/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": LOOPBACK_CALLBACK},
        auth=(app.client_id, app.client_secret or ""),
        timeout=10,
    )
    assert token.status_code == 200, token.text


AGENT: dict[str, str] = {}  # the agent application the pages show, registered by the test


def _agent_params() -> dict[str, str]:
    return {
        "client_id": AGENT["client_id"],
        "redirect_uri": LOOPBACK_CALLBACK,
        "response_type": "code",
        "scope": "read",
        "state": "xyz",
        "code_challenge": pkce.s256(pkce.new_verifier()),
        "code_challenge_method": "S256",
        "resource": f"{BASE[0]}/mcp",
    }


def _agent_grant(server: LiveServer) -> None:
    """An agent application registered by itself (RFC 7591) and allowed by the admin."""
    created = httpx.post(
        f"{BASE[0]}/oauth/register",
        json={
            "client_name": "Research assistant (MCP)",
            "redirect_uris": [LOOPBACK_CALLBACK],
            "token_endpoint_auth_method": "none",
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    AGENT.update(client_id=created.json()["client_id"])
    with httpx.Client(base_url=BASE[0], follow_redirects=False, timeout=10) as person:
        login(person, server.world.admin)
        page = person.get("/oauth/authorize", params=_agent_params())
        allowed = person.post(
            "/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"}
        )
        assert allowed.status_code == 302, allowed.text


def _shots(server: LiveServer) -> list[Shot]:
    world = server.world
    app = world.app

    def consent(kind: str) -> Callable[[Page], None]:
        extra = {"resource_owner_type": "company"} if kind == "company" else {}

        def reach(page: Page) -> None:
            page.goto(authorize_url(BASE[0], app, scope="read write", state="xyz", **extra))
            expect(page.get_by_role("button", name="Allow")).to_be_visible()

        return reach

    def code_page(page: Page) -> None:
        page.goto(f"{BASE[0]}/oauth/applications/{app.id}")
        page.locator("#authorize-button").click()
        page.get_by_role("button", name="Allow").click()
        expect(page.locator("#authorization-code")).to_be_visible()

    def new_secret(page: Page) -> None:
        page.goto(f"{BASE[0]}/oauth/applications/new")
        page.locator("input[name=name]").fill("Payroll sync")
        page.locator("textarea[name=redirect_uris]").fill("https://payroll.example/oauth/callback")
        page.locator("input[name=scopes][value=read]").check()
        page.get_by_role("button", name="Create application").click()
        expect(page.locator("#client-secret")).to_be_visible()

    def form_errors(page: Page) -> None:
        page.goto(f"{BASE[0]}/oauth/applications/new")
        page.locator("input[name=name]").fill("Broken")
        page.locator("textarea[name=redirect_uris]").fill("http://not-loopback.example/cb")
        page.get_by_role("button", name="Create application").click()
        expect(page.locator(".alert")).to_be_visible()

    def api_key_created(page: Page) -> None:
        page.goto(f"{BASE[0]}/api_keys")
        page.locator("input[name=name]").fill("Nightly export")
        page.get_by_role("button", name="Create API key").click()

    employee = world.employee.id
    invitation: dict[str, str] = {}

    def invited(page: Page) -> None:
        page.goto(f"{BASE[0]}/people/{employee}")
        page.get_by_role("button", name=re.compile("^Invite")).click()
        invitation["link"] = page.locator("#invitation-link").inner_text().strip()

    def set_password(page: Page) -> None:
        response = page.goto(invitation["link"])
        assert response is not None and response.status == 200

    def confirm_step(path: str, button: str) -> Callable[[Page], None]:
        def reach(page: Page) -> None:  # without JavaScript: the server's confirm page
            page.goto(BASE[0] + path)
            page.get_by_role("button", name=button, exact=True).first.click()
            expect(page.locator("ul.consequences")).to_be_visible()

        return reach

    def agent_consent(page: Page) -> None:
        page.goto(f"{BASE[0]}/oauth/authorize?{urlencode(_agent_params())}")
        expect(page.locator(".agent-warning")).to_be_visible()

    return [
        Shot("sign-in", _goto("/login"), who="nobody"),
        Shot("consent-agent-application", agent_consent, who="employee"),
        Shot("agent-applications", _goto("/oauth/agent_applications")),
        Shot("home", _goto("/")),
        Shot("consent-user-token", consent("user")),
        Shot("consent-company-token", consent("company")),
        Shot("authorization-code", code_page),
        Shot("applications", _goto("/oauth/applications")),
        Shot("application-new", _goto("/oauth/applications/new")),
        Shot("application-new-errors", form_errors),
        Shot("application-created", new_secret),
        Shot("application", _goto(f"/oauth/applications/{app.id}")),
        Shot("application-edit", _goto(f"/oauth/applications/{app.id}/edit")),
        Shot("authorized-applications", _goto("/oauth/authorized_applications")),
        Shot("api-keys", _goto("/api_keys")),
        Shot("api-key-created", api_key_created),
        Shot("audit-trail", _goto("/audit")),
        Shot("audit-trail-filtered", _goto("/audit?event=sign_in.*")),
        Shot("people", _goto("/people")),
        Shot("person", _goto(f"/people/{employee}")),
        Shot("person-invited", invited),
        Shot("set-password", set_password, who="nobody"),
        Shot("change-password", _goto("/account/password")),
        Shot(
            "confirm-delete-application",
            confirm_step(f"/oauth/applications/{app.id}", "Delete (revokes its tokens)"),
            who="admin-without-javascript",
        ),
        Shot(
            "confirm-deactivate-person",
            confirm_step(f"/people/{employee}", "Deactivate"),
            who="admin-without-javascript",
        ),
        Shot("not-found", _goto("/no/such/page", 404)),
        Shot("employee-refused", _goto("/oauth/applications", 403), who="employee"),
        Shot("employee-home", _goto("/"), who="employee"),
        Shot("api-docs", _goto("/api/docs")),
    ]


def _signed_in_page(
    browser: Browser, width: int, person: Person | None, javascript: bool = True
) -> Page:
    context = browser.new_context(
        viewport={"width": width, "height": 900}, java_script_enabled=javascript
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    if person is not None:
        sign_in(page, BASE[0], person)
    return page


def test_every_page_fits_and_is_photographed(browser: Browser, live_server: LiveServer) -> None:
    BASE[0] = live_server.url
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    people = _people(live_server)
    # Grants of both kinds, so that the lists and the audit trail have something to show.
    setup = _signed_in_page(browser, 1280, people["admin"])
    _grant(setup, live_server)
    _grant(setup, live_server, resource_owner_type="company")
    setup.context.close()
    _agent_grant(live_server)

    problems: list[str] = []
    for width in WIDTHS:
        pages = {
            who: _signed_in_page(browser, width, people.get(who))
            for who in ("admin", "employee", "nobody")
        }
        pages["admin-without-javascript"] = _signed_in_page(
            browser, width, people["admin"], javascript=False
        )
        for shot in _shots(live_server):
            page = pages[shot.who]
            shot.reach(page)
            page.wait_for_load_state("networkidle")
            if shot.name != "api-docs":  # Swagger UI's layout is its own
                problems += [
                    f"{shot.name} at {width}px: {p}"
                    for p in page.evaluate(_LAYOUT_PROBLEMS, _FEWEST_CHARACTERS_PER_LINE)
                ]
            page.screenshot(path=SCREENSHOTS / f"{shot.name}-{width}.png", full_page=True)
        for page in pages.values():
            page.context.close()
    assert not problems, "\n".join(problems)
