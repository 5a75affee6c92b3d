"""The person in front of the browser, for the interoperability tests.

A third-party client library builds the authorization URL; this plays the person who opens
it: follows the redirect to sign-in, signs in, presses Allow (or Deny) on the consent page and
hands back the ``Location`` of the final redirect to the client's redirect URI, which is never
followed (its host does not exist). Every step checks what a real browser would see, so a
server that skips sign-in or consent cannot pass.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from tests.conftest import Person, csrf_of, hidden_fields


def sign_in_through(base_url: str, authorization_url: str, person: Person) -> httpx.Response:
    """Open ``authorization_url`` signed out, get sent to sign in, sign in as ``person`` and
    come back to the same request; return the authorization endpoint's answer then."""
    assert authorization_url.startswith(base_url + "/oauth/authorize?"), authorization_url
    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=10) as browser:
        return _sign_in_through(browser, authorization_url, person)


def _sign_in_through(
    browser: httpx.Client, authorization_url: str, person: Person
) -> httpx.Response:
    # Signed out: the authorization endpoint sends the person to sign in, and back after.
    first = browser.get(authorization_url)
    assert first.status_code == 303, first.text
    login_target = first.headers["location"]
    assert urlsplit(login_target).path == "/login"
    back_to = parse_qs(urlsplit(login_target).query)["next"][0]
    assert back_to.startswith("/oauth/authorize?")

    login_page = browser.get(login_target)
    assert login_page.status_code == 200
    form = hidden_fields(login_page.text)
    assert form["next"] == back_to
    signed_in = browser.post(
        "/login",
        data={
            "csrf_token": csrf_of(login_page.text),
            "next": form["next"],
            "email": person.email,
            "password": person.password,
        },
    )
    assert signed_in.status_code == 303, signed_in.text
    assert signed_in.headers["location"] == back_to
    return browser.get(signed_in.headers["location"])


def approve(base_url: str, authorization_url: str, person: Person, decision: str = "allow") -> str:
    """Open ``authorization_url`` signed out, sign in as ``person``, answer the consent page
    with ``decision``; return the redirect's Location (to the client's redirect URI)."""
    assert authorization_url.startswith(base_url + "/oauth/authorize?"), authorization_url
    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=10) as browser:
        consent_page = _sign_in_through(browser, authorization_url, person)
        assert consent_page.status_code == 200, consent_page.text
        assert 'name="decision" value="allow"' in consent_page.text
        answered = browser.post(
            "/oauth/authorize", data={**hidden_fields(consent_page.text), "decision": decision}
        )
        assert answered.status_code == 302, answered.text
        return answered.headers["location"]


def query_of(location: str) -> dict[str, str]:
    """The parameters of a redirect's query, one value each."""
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
