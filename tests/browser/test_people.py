"""The People page in a real browser against a real `grantly serve`: an admin adds a person,
whose link (copied from the page) sets their password in another browser; deactivating asks in
a dialog what stops working; the pages fit a 375 px wide phone."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from tests.browser.test_dashboard import sign_in
from tests.conftest import LiveServer, Person

pytestmark = [pytest.mark.browser, pytest.mark.live]

PHONE = {"width": 375, "height": 740}


def _fits(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width} px wide"


def test_an_added_person_sets_their_password_with_the_link_and_signs_in(
    browser: Browser, page: Page, live_server: LiveServer, artifacts: Path
) -> None:
    base, world = live_server.url, live_server.world
    sign_in(page, base, world.admin)
    page.locator("header.top nav").get_by_role("link", name="People").click()
    expect(page.get_by_role("heading", name="People", exact=True)).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Nuria Vidal")
    page.get_by_label("Sign-in email").fill("nuria@acme.example")
    page.get_by_role("button", name="Add and invite").click()
    expect(page.get_by_role("heading", name="Invitation for Nuria Vidal")).to_be_visible()
    link = page.locator("#invitation-link").inner_text().strip()
    assert link.startswith(f"{base}/set-password?token=gin_")

    phone = browser.new_context(viewport=PHONE)
    try:
        invitee = phone.new_page()
        invitee.goto(link)
        expect(invitee.get_by_role("heading", name="Set your password")).to_be_visible()
        expect(invitee.locator("main")).to_contain_text("nuria@acme.example")
        _fits(invitee)
        invitee.screenshot(path=str(artifacts / "set-password-375.png"), full_page=True)
        invitee.get_by_label("New password", exact=True).fill("nuria's own password")
        invitee.get_by_label("New password, again").fill("nuria's own password")
        invitee.get_by_role("button", name="Set password").click()
        expect(invitee.locator(".notice")).to_contain_text("Your password is set.")
        sign_in(invitee, base, Person(0, "nuria@acme.example", "nuria's own password", 0, False))
        invitee.goto(link)
        expect(invitee.get_by_role("heading", name="This link was already used")).to_be_visible()
    finally:
        phone.close()


def test_deactivating_asks_in_a_dialog_what_stops_working(
    page: Page, live_server: LiveServer
) -> None:
    base, world = live_server.url, live_server.world
    sign_in(page, base, world.admin)
    page.goto(f"{base}/people/{world.employee.id}")
    asked: list[str] = []

    def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.get_by_role("button", name="Deactivate").click()
    expect(page.locator(".notice")).to_contain_text("Deactivated employee:")
    assert asked and asked[0].startswith("employee can no longer sign in.")
    expect(page.get_by_role("button", name="Reactivate")).to_be_visible()


def test_the_people_pages_fit_a_phone(
    browser: Browser, live_server: LiveServer, artifacts: Path
) -> None:
    base, world = live_server.url, live_server.world
    phone = browser.new_context(viewport=PHONE)
    try:
        page = phone.new_page()
        sign_in_on_phone(page, base, world.admin)
        for path, name in (
            ("/people", "people"),
            (f"/people/{world.employee.id}", "person"),
            ("/account/password", "change-password"),
        ):
            page.goto(base + path)
            _fits(page)
            page.screenshot(path=str(artifacts / f"{name}-375.png"), full_page=True)
    finally:
        phone.close()


def sign_in_on_phone(page: Page, base: str, person: Person) -> None:
    """Signing in where the header hides who is signed in (narrow screens)."""
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
