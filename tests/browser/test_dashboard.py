"""The dashboard in a real browser against a real `grantly serve`: an admin registers an
application, authorizes it with the Authorize button and exchanges the code shown on the page
for a token that opens the API; the secret is shown once; employees are kept out of the
repository; the consent page cannot be framed."""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from tests.conftest import (
    REDIRECT_URI,
    LiveServer,
    Person,
    authorize_params,
    authorize_url,
    callback_params,
    consent,
)
from tests.conftest import sign_in as http_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.live]

CALLBACK = "https://integration.example/callback"
APP_NAME = "Payroll sync"
_DATA = re.compile(r"--data-urlencode\s+('[^']*'|\"[^\"]*\"|\S+)")
_TARGET = re.compile(r"curl\s+-X\s+POST\s+('[^']*'|\S+)")


# --- acting like a person ----------------------------------------------------------------


def sign_in(page: Page, base: str, person: Person) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("header.top .who")).to_contain_text(person.email)


def create_application(page: Page, base: str, admin: Person) -> tuple[str, str]:
    """Sign in, register a confidential application with read and write; returns the client
    id and the client secret as the show page displays them right after creation."""
    sign_in(page, base, admin)
    page.locator("header.top nav").get_by_role("link", name="OAuth applications").click()
    expect(page.get_by_role("heading", name="OAuth applications")).to_be_visible()
    page.get_by_role("link", name="New application").click()
    expect(page.get_by_role("heading", name="New application")).to_be_visible()

    page.locator("input[name=name]").fill(APP_NAME)
    page.locator("textarea[name=redirect_uris]").fill(CALLBACK)
    confidential = page.locator("input[name=confidential]")
    expect(confidential).to_be_checked()  # the default: server applications keep a secret
    page.locator("input[name=scopes][value=read]").check()
    page.locator("input[name=scopes][value=write]").check()
    page.get_by_role("button", name="Create application").click()

    expect(page.get_by_role("heading", name=APP_NAME)).to_be_visible()
    client_id = page.locator("#client-id").inner_text().strip()
    client_secret = page.locator("#client-secret").inner_text().strip()
    assert client_id
    assert client_secret
    assert client_secret != client_id
    return client_id, client_secret


def curl_fields(curl: str) -> tuple[str, dict[str, str]]:
    """The token endpoint and the `--data-urlencode 'name=value'` fields of the code page's
    curl command."""
    target = _TARGET.search(curl)
    assert target, curl
    fields: dict[str, str] = {}
    for raw in _DATA.findall(curl):
        (pair,) = shlex.split(raw)
        name, _, value = pair.partition("=")
        fields[name] = value
    return shlex.split(target.group(1))[0], fields


# --- the tests ----------------------------------------------------------------------------


def test_admin_registers_an_application_and_its_code_opens_the_api(
    page: Page, live_server: LiveServer, artifacts: Path
) -> None:
    base, admin = live_server.url, live_server.world.admin
    client_id, client_secret = create_application(page, base, admin)

    page.locator("#authorize-button").click()
    expect(page.get_by_role("heading", name=f"Authorize {APP_NAME}?")).to_be_visible()
    consent_page = page.locator("section.consent")
    expect(consent_page).to_contain_text("Acme")
    expect(page.locator(".token-kind")).to_contain_text(f"you ({admin.email})")
    expect(page.locator("ul.scopes li code")).to_have_text(["read", "write"])
    expect(page.locator(".destination")).to_contain_text("shown on this page")
    page.screenshot(path=artifacts / "consent.png", full_page=True)

    page.get_by_role("button", name="Allow").click()
    expect(page.get_by_role("heading", name=f"Authorization code for {APP_NAME}")).to_be_visible()
    code = page.locator("#authorization-code").inner_text().strip()
    curl = page.locator("#token-curl").inner_text()
    page.screenshot(path=artifacts / "code.png", full_page=True)

    target, fields = curl_fields(curl)
    assert target == f"{base}/oauth/token"
    assert fields == {
        "client_id": client_id,
        "client_secret": "<YOUR_CLIENT_SECRET>",  # the page never repeats the secret
        "code": code,
        "grant_type": "authorization_code",
        "redirect_uri": CALLBACK,
    }
    assert client_secret not in page.content()

    with httpx.Client(base_url=base, timeout=10) as http:
        token = http.post(
            "/oauth/token",
            data={
                "client_id": client_id,
                "client_secret": client_secret,
                "code": code,
                "grant_type": "authorization_code",
                "redirect_uri": fields["redirect_uri"],
            },
        )
        assert token.status_code == 200, token.text
        body = token.json()
        assert body["token_type"] == "Bearer"
        assert body["scope"] == "read write"

        me = http.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.status_code == 200, me.text
        who = me.json()
        assert who["resource_owner_type"] == "user"
        assert who["user"]["email"] == admin.email
        assert who["user"]["id"] == admin.id
        assert who["user"]["admin"] is True
        assert who["company"] == {"id": admin.company_id, "name": "Acme"}
        assert who["client_id"] == client_id
        assert who["scope"] == "read write"

        # The code is single use: a replay is refused.
        again = http.post(
            "/oauth/token",
            data={
                "client_id": client_id,
                "client_secret": client_secret,
                "code": code,
                "grant_type": "authorization_code",
                "redirect_uri": fields["redirect_uri"],
            },
        )
        assert again.status_code == 400, again.text
        assert again.json()["error"] == "invalid_grant"


def test_the_client_secret_is_shown_only_once(page: Page, live_server: LiveServer) -> None:
    base = live_server.url
    client_id, client_secret = create_application(page, base, live_server.world.admin)
    href = page.locator("#authorize-button").get_attribute("href")
    assert href
    match = re.fullmatch(r"/oauth/applications/(\d+)/authorize", href)
    assert match, href
    show_url = f"{base}/oauth/applications/{match.group(1)}"

    # Back to the list and into the application, as a person would.
    page.get_by_role("link", name="All applications").click()
    expect(page.get_by_role("heading", name="OAuth applications")).to_be_visible()
    page.get_by_role("link", name=APP_NAME, exact=True).click()
    expect(page).to_have_url(show_url)
    expect(page.locator("#client-id")).to_have_text(client_id)
    expect(page.locator("#client-secret")).to_have_count(0)
    assert client_secret not in page.content()

    response = page.reload()
    assert response is not None
    assert response.status == 200
    expect(page.locator("#client-id")).to_have_text(client_id)
    expect(page.locator("#client-secret")).to_have_count(0)
    assert client_secret not in page.content()


def test_reloading_the_new_application_page_does_not_create_another(
    page: Page, live_server: LiveServer
) -> None:
    base = live_server.url
    _client_id, client_secret = create_application(page, base, live_server.world.admin)
    # The page that shows the secret answered the POST; the browser shows the application's
    # own URL, so a reload is a GET of it.
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/oauth/applications/\d+$"))
    expect(page.locator(".notice")).to_contain_text(f"Application “{APP_NAME}” created.")

    response = page.reload()  # right on the page that shows the secret
    assert response is not None and response.request.method == "GET"
    assert client_secret not in page.content()
    expect(page.locator(".notice")).to_have_count(0)  # said once
    page.goto(f"{base}/oauth/applications")
    expect(page.get_by_role("link", name=APP_NAME, exact=True)).to_have_count(1)


def test_deleting_asks_in_a_dialog_and_says_what_it_did(
    page: Page, live_server: LiveServer, artifacts: Path
) -> None:
    base = live_server.url
    create_application(page, base, live_server.world.admin)
    show_url = page.url
    questions: list[str] = []
    answers = iter([False, True])

    def answer(dialog: Dialog) -> None:
        questions.append(dialog.message)
        if next(answers):
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", answer)
    delete = page.get_by_role("button", name="Delete (revokes its tokens)")
    delete.click()  # dismissed: nothing happens
    expect(page).to_have_url(show_url)
    expect(page.get_by_role("heading", name=APP_NAME)).to_be_visible()
    delete.click()
    expect(page.get_by_role("heading", name="OAuth applications")).to_be_visible()
    expect(page.locator(".notice")).to_contain_text(f"Application “{APP_NAME}” deleted")
    expect(page.get_by_role("link", name=APP_NAME, exact=True)).to_have_count(0)
    assert len(questions) == 2
    assert "No grant of it works now, so no token stops working." in questions[0]
    page.screenshot(path=artifacts / "deleted.png", full_page=True)


def test_without_javascript_deleting_goes_through_a_confirm_page(
    browser: Browser, live_server: LiveServer, artifacts: Path
) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 375, "height": 800})
    try:
        page = context.new_page()
        base = live_server.url
        create_application(page, base, live_server.world.admin)
        page.get_by_role("link", name="All applications").click()
        page.get_by_role("link", name=APP_NAME, exact=True).click()
        page.get_by_role("button", name="Delete (revokes its tokens)").click()
        expect(page.get_by_role("heading", name=f"Delete “{APP_NAME}”?")).to_be_visible()
        expect(page.locator("ul.consequences")).to_contain_text("cannot be undone")
        page.screenshot(path=artifacts / "confirm-delete.png", full_page=True)
        page.get_by_role("button", name="Delete application").click()
        expect(page.locator(".notice")).to_contain_text(f"Application “{APP_NAME}” deleted")
    finally:
        context.close()


def test_scope_chips_never_break_inside_a_word_at_375_pixels(
    page: Page, live_server: LiveServer, artifacts: Path
) -> None:
    base, world = live_server.url, live_server.world
    for person, extra in ((world.employee, {}), (world.admin, {"resource_owner_type": "company"})):
        with httpx.Client(base_url=base, timeout=10) as http:  # grants to list, as people give
            http_sign_in(http, person)
            code = callback_params(consent(http, authorize_params(world.app, **extra)))["code"]
            token = http.post(
                "/oauth/token",
                data={"grant_type": "authorization_code", "code": code,
                      "redirect_uri": REDIRECT_URI},
                auth=(world.app.client_id, world.app.client_secret or ""),
            )  # fmt: skip
            assert token.status_code == 200, token.text
    page.set_viewport_size({"width": 375, "height": 800})
    sign_in(page, base, world.admin)
    for path in ("/oauth/applications/new", f"/oauth/applications/{live_server.world.app.id}"):
        page.goto(base + path)
        chips = page.locator(".chip")
        assert chips.count() >= 2, path
        for index in range(chips.count()):
            # A chip's text in one line box: text that wrapped has a rect per line.
            lines = chips.nth(index).evaluate(
                "chip => { const r = document.createRange(); r.selectNodeContents(chip);"
                " return r.getClientRects().length; }"
            )
            assert lines == 1, (path, chips.nth(index).inner_text())
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, (path, width)
    expect(page.locator("table.grants")).to_have_count(2)
    page.screenshot(path=artifacts / "application-375.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=artifacts / "application.png", full_page=True)


def test_reloading_after_regenerating_keeps_the_copied_secret_valid(
    page: Page, live_server: LiveServer
) -> None:
    base = live_server.url
    client_id, first_secret = create_application(page, base, live_server.world.admin)
    href = page.locator("#authorize-button").get_attribute("href")
    assert href
    show_url = base + href.removesuffix("/authorize")

    questions: list[str] = []

    def answer(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    page.get_by_role("button", name="Regenerate secret").click()
    copied = page.locator("#client-secret").inner_text().strip()
    assert questions and questions[0].startswith("The current client secret stops working")
    assert copied != first_secret
    page.reload()  # on the page that shows the new secret

    page.goto(show_url)
    page.locator("#authorize-button").click()
    page.get_by_role("button", name="Allow").click()
    code = page.locator("#authorization-code").inner_text().strip()
    token = httpx.post(
        f"{base}/oauth/token",
        data={
            "client_id": client_id,
            "client_secret": copied,
            "code": code,
            "grant_type": "authorization_code",
            "redirect_uri": CALLBACK,
        },
        timeout=10,
    )
    assert token.status_code == 200, token.text


def test_an_employee_gets_the_admins_only_page(
    page: Page, live_server: LiveServer, artifacts: Path
) -> None:
    base, employee = live_server.url, live_server.world.employee
    sign_in(page, base, employee)
    expect(
        page.locator("header.top nav").get_by_role("link", name="OAuth applications")
    ).to_have_count(0)
    expect(page.get_by_role("link", name="Manage OAuth applications")).to_have_count(0)

    response = page.goto(f"{base}/oauth/applications")
    assert response is not None
    assert response.status == 403
    expect(
        page.get_by_role("heading", name="Only admins manage OAuth applications")
    ).to_be_visible()
    expect(page.locator("p.lead")).to_contain_text("any employee can do it")
    expect(page.get_by_role("link", name="New application")).to_have_count(0)
    assert live_server.world.app.client_id not in page.content()
    page.screenshot(path=artifacts / "non-admin.png", full_page=True)


def test_the_consent_page_cannot_be_framed(page: Page, live_server: LiveServer) -> None:
    base, world = live_server.url, live_server.world
    sign_in(page, base, world.admin)
    consent_url = authorize_url(base, world.app)

    response = page.goto(consent_url)
    assert response is not None
    assert response.status == 200
    expect(page.get_by_role("button", name="Allow")).to_be_visible()
    headers = response.headers  # lower-cased names
    assert headers["x-frame-options"] == "DENY"
    directives = [d.strip() for d in headers["content-security-policy"].split(";")]
    assert "frame-ancestors 'none'" in directives

    # And Chromium honours them: a page elsewhere that frames the consent gets Chromium's
    # "blocked" error page in the frame, not Grantly's consent with its Allow button.
    attacker = "https://attacker.example/"
    page.route(
        attacker,
        lambda route: route.fulfill(
            content_type="text/html",
            body=f'<!doctype html><iframe id="victim" src="{consent_url}"></iframe>',
        ),
    )
    page.goto(attacker)
    victim = page.locator("#victim").element_handle().content_frame()
    assert victim is not None, "the attacker's iframe did not appear"
    deadline = time.monotonic() + 10
    while not victim.url.startswith("chrome-error://") and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert victim.url.startswith("chrome-error://"), (
        f"the consent page loaded in a frame: {victim.url}"
    )
    assert victim.locator("header.top").count() == 0
    assert victim.locator("button[value=allow]").count() == 0
