"""Threat: clickjacking (RFC 9700 §4.16; RFC 6749 §10.13).

An attacker's page frames Grantly's consent page invisibly and lures the person into clicking
Allow. Every HTML page — sign-in, consent, the page that shows a code, the dashboard, error
pages of every kind — must forbid framing with ``X-Frame-Options: DENY`` and a CSP with
``frame-ancestors 'none'``, and must not allow inline script.

Covered elsewhere: Chromium refusing to render a framed dashboard (``tests/browser/
test_dashboard.py``). ``Referrer-Policy`` on pages that carry codes is attacked in
``test_token_leakage.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient

from grantly.oauth.redirect_uris import OUT_OF_BAND
from tests.conftest import World, authorize_params, csrf_of, hidden_fields, sign_in


def _assert_unframeable(response: httpx.Response, what: str) -> None:
    assert response.headers.get("x-frame-options") == "DENY", what
    csp = response.headers.get("content-security-policy", "")
    directives = {d.strip().split(" ")[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", (what, csp)


def _html(response: httpx.Response, what: str) -> httpx.Response:
    assert response.headers["content-type"].startswith("text/html"), (what, response.status_code)
    return response


def _consent(client: TestClient, world: World) -> httpx.Response:
    sign_in(client, world.employee)
    return client.get("/oauth/authorize", params=authorize_params(world.app))


def _code_page(client: TestClient, world: World) -> httpx.Response:
    """The dashboard's Authorize button: consent, then the page that displays the code."""
    sign_in(client, world.admin)
    page = client.get(f"/oauth/applications/{world.app.id}/authorize")
    response = client.post(
        "/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"}
    )
    assert "code" in response.text and response.status_code == 200
    return response


def _as(person: str, path: str) -> Callable[[TestClient, World], httpx.Response]:
    def visit(client: TestClient, world: World) -> httpx.Response:
        sign_in(client, getattr(world, person))
        return client.get(
            path.format(app=world.app.id, other=world.other_app.id, employee=world.employee.id)
        )

    return visit


def _anonymous(path: str) -> Callable[[TestClient, World], httpx.Response]:
    return lambda client, world: client.get(path)


def _forged_consent(client: TestClient, world: World) -> httpx.Response:
    sign_in(client, world.employee)
    return client.post(
        "/oauth/authorize", data={**authorize_params(world.app), "decision": "allow"}
    )


def _failed_sign_in(client: TestClient, world: World) -> httpx.Response:
    page = client.get("/login")
    return client.post(
        "/login",
        data={"email": world.admin.email, "password": "wrong", "csrf_token": csrf_of(page.text)},
    )


def _unregistered_redirect(client: TestClient, world: World) -> httpx.Response:
    return client.get(
        "/oauth/authorize",
        params=authorize_params(world.app, redirect_uri="https://attacker.example/cb"),
    )


def _leaving(client: TestClient, world: World) -> httpx.Response:
    """An error for another company's application, offered as a link (RFC 9700 §4.11.2)."""
    sign_in(client, world.other_admin)
    return client.get("/oauth/authorize", params=authorize_params(world.app, scope="payroll"))


def _method_not_allowed(client: TestClient, world: World) -> httpx.Response:
    return client.get("/logout")


PAGES: dict[str, Callable[[TestClient, World], httpx.Response]] = {
    "sign-in": _anonymous("/login"),
    "failed sign-in (401)": _failed_sign_in,
    "consent": _consent,
    "code page": _code_page,
    "unknown client (400)": _anonymous("/oauth/authorize?client_id=nobody"),
    "unregistered redirect URI (400)": _unregistered_redirect,
    "forged consent (403)": _forged_consent,
    "leaving Grantly (400)": _leaving,
    "not found (404)": _anonymous("/no-such-page"),
    "method not allowed (405)": _method_not_allowed,
    "home": _as("admin", "/"),
    "applications": _as("admin", "/oauth/applications"),
    "new application": _as("admin", "/oauth/applications/new"),
    "application": _as("admin", "/oauth/applications/{app}"),
    "edit application": _as("admin", "/oauth/applications/{app}/edit"),
    "another company's application (404)": _as("admin", "/oauth/applications/{other}"),
    "dashboard refused to an employee (403)": _as("employee", "/oauth/applications"),
    "authorized applications": _as("employee", "/oauth/authorized_applications"),
    "API keys": _as("admin", "/api_keys"),
    "audit trail": _as("admin", "/audit"),
    "people": _as("admin", "/people"),
    "person": _as("admin", "/people/{employee}"),
    "change password": _as("employee", "/account/password"),
    "invitation link refused (400)": _anonymous("/set-password?token=gin_nope"),
}


@pytest.mark.parametrize("page", PAGES)
def test_no_html_page_can_be_framed(client: TestClient, world: World, page: str) -> None:
    """RFC 9700 §4.16: "authorization servers MUST prevent clickjacking attacks"; it names
    ``X-Frame-Options`` and CSP ``frame-ancestors`` (RFC 6749 §10.13)."""
    _assert_unframeable(_html(PAGES[page](client, world), page), page)


def test_the_consent_page_runs_no_inline_script(client: TestClient, world: World) -> None:
    """RFC 9700 §4.16: a strict CSP on the consent page — scripts only from Grantly itself, no
    inline script, no plugins, no <base> rewriting that could re-target the form."""
    csp = _consent(client, world).headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "object-src 'none'" in csp and "base-uri 'none'" in csp


def test_the_consent_form_posts_only_to_grantly(client: TestClient, world: World) -> None:
    """RFC 9700 §4.16: the consent decision is a form of Grantly's posting to Grantly — no
    action elsewhere an injected page element could point at."""
    page = _consent(client, world)
    assert 'action="/oauth/authorize"' in page.text
    assert "https://attacker" not in page.text


@pytest.mark.parametrize("path", ["/api/docs", "/api/openapi.json", "/healthz"])
def test_other_responses_forbid_framing_too(client: TestClient, world: World, path: str) -> None:
    """RFC 9700 §4.16: the Swagger UI page allows its bootstrap script, never framing; JSON
    responses carry the same headers."""
    _assert_unframeable(client.get(path), path)


def test_the_out_of_band_code_page_cannot_be_framed(client: TestClient, world: World) -> None:
    """RFC 9700 §4.16: the out-of-band flow shows the code on a page instead of redirecting;
    a framed copy would show the code to the framing site's tricks."""
    from grantly import admin
    from grantly.oauth.registration import validate

    async def work(connection):
        draft = validate(
            name="CLI",
            redirect_uris=[OUT_OF_BAND],
            confidential=True,
            scopes=["read"],
            server_scopes=("read", "write"),
        )
        return await admin.create_application(connection, world.company_a, draft, 0)

    created = world.run(work)
    sign_in(client, world.employee)
    page = client.get(
        "/oauth/authorize",
        params={
            "client_id": created.application.client_id,
            "redirect_uri": OUT_OF_BAND,
            "response_type": "code",
        },
    )
    shown = client.post("/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"})
    assert shown.status_code == 200 and "gac_" in shown.text
    _assert_unframeable(shown, "out-of-band code page")
