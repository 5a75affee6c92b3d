"""No request, however malformed, makes the server answer 500 or leak a stack trace."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import REDIRECT_URI, World, sign_in

NAMES = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "resource_owner_type",
    "code_challenge",
    "code_challenge_method",
    "grant_type",
    "code",
    "refresh_token",
    "client_secret",
    "code_verifier",
    "decision",
    "csrf_token",
    "email",
    "password",
    "next",
]
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "code",
            "authorization_code",
            "refresh_token",
            "company",
            "user",
            "S256",
            "plain",
            "read,write",
            "read write",
            "code=read,write",
            REDIRECT_URI,
            "urn:ietf:wg:oauth:2.0:oob",
            "allow",
            "deny",
            "",
            "\x00",
            "%",
            "é" * 3000,
        ]
    ),
)
# httpx refuses to build a URL whose query exceeds 64 KiB, so the client could not send more.
PARAMS = st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=8).filter(
    lambda pairs: len(urlencode(pairs)) < 60_000
)
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _form(pairs) -> str:
    return urlencode(list(pairs))


def _check(response) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text


@FUZZ
@given(params=PARAMS, valid_client=st.booleans())
def test_authorize_never_fails_with_500(
    client: TestClient, world: World, params, valid_client
) -> None:
    if valid_client:
        params = [("client_id", world.app.client_id), *params]
    _check(client.get("/oauth/authorize", params=params))


@FUZZ
@given(
    params=PARAMS,
    basic=st.one_of(
        st.none(),
        st.tuples(
            st.sampled_from([b"Basic ", b"basic ", b"Bearer ", b""]), st.binary(max_size=60)
        ).map(lambda parts: (parts[0] + parts[1]).translate(None, b"\r\n\x00")),
    ),
)
def test_token_never_fails_with_500(client: TestClient, world: World, params, basic) -> None:
    headers = {"Authorization": basic} if basic and basic.strip() else {}
    _check(client.post("/oauth/token", content=_form(params), headers={**FORM, **headers}))


@FUZZ
@given(params=PARAMS)
def test_consent_and_login_posts_never_fail_with_500(
    client: TestClient, world: World, params
) -> None:
    _check(client.post("/oauth/authorize", content=_form(params), headers=FORM))
    _check(client.post("/login", content=_form(params), headers=FORM))


def test_signed_in_consent_posts_with_garbage_never_fail_with_500(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    page = client.get("/")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)

    @FUZZ
    @given(params=PARAMS)
    def run(params) -> None:
        pairs = [("csrf_token", csrf), ("client_id", world.app.client_id), *params]
        _check(client.post("/oauth/authorize", content=_form(pairs), headers=FORM))

    run()


def test_binary_and_broken_bodies_get_an_oauth_error(client: TestClient, world: World) -> None:
    for body, content_type in (
        (b"\xff\xfe\x00", "application/x-www-form-urlencoded"),
        (b"--x\r\nbroken", "multipart/form-data; boundary=x"),
        (b"{}", "application/json"),
    ):
        response = client.post("/oauth/token", content=body, headers={"Content-Type": content_type})
        _check(response)
        assert response.json()["error"] in (
            "invalid_request",
            "invalid_client",
            "unsupported_grant_type",
        )
