"""Threat: guessing passwords and client secrets (RFC 6749 §10.10 credentials-guessing attacks;
RFC 9700 §2.5 client authentication; OWASP authentication
guidance). RFC 9700 itself has no section on brute force.

Credential stuffing and secret guessing against the running app: failures are throttled per
account, per client address and per client id, with 429 and ``Retry-After`` — and once
throttled, even the right guess is refused until the window passes, so guessing cannot go
on in the background.

Covered elsewhere: the basic per-account and per-client limits, separate endpoints counting,
Redis-shared counters and failing open when Redis is down (``tests/web/test_throttling.py``);
256-bit secrets compared in constant time (``tests/oauth/test_clients.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from grantly.app import create_app
from tests.conftest import World, csrf_of, make_settings
from tests.security.conftest import basic

WINDOW = 60


def _addressed(app: ASGIApp) -> ASGIApp:
    """The app, seen from the client address the test names in ``X-Test-Address`` (as if
    each request came from another machine), on one event loop and one database pool."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"x-test-address":
                    scope = dict(scope, client=(value.decode(), 4242))
        await app(scope, receive, send)

    return asgi


@pytest.fixture
def throttled(world: World, tmp_path) -> Iterator[TestClient]:
    """The app with small limits: 3 failures per account, 5 per address, 3 per client id,
    per minute."""
    settings = make_settings(
        tmp_path,
        database_url=world.settings.database_url,
        sign_in_limit_per_account="3/minute",
        sign_in_limit_per_address="5/minute",
        client_auth_limit_per_client="3/minute",
    )
    with TestClient(
        _addressed(create_app(settings)), base_url="http://127.0.0.1:8000", follow_redirects=False
    ) as http:
        yield http


def _attempt(http: TestClient, email: str, password: str, address: str = "192.0.2.1"):
    """A sign-in from a fresh browser at ``address``."""
    http.cookies.clear()
    headers = {"X-Test-Address": address}
    page = http.get("/login", headers=headers)
    return http.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text), "next": "/"},
        headers=headers,
    )


def _assert_throttled_page(response) -> None:
    assert response.status_code == 429, response.status_code
    assert 0 < int(response.headers["retry-after"]) <= WINDOW + 1
    assert response.headers["content-type"].startswith("text/html")
    assert "location" not in response.headers  # not signed in, not sent anywhere


def test_password_spraying_from_one_address_is_throttled(
    throttled: TestClient, world: World
) -> None:
    """RFC 6749 §10.10: one address trying one password on many accounts (spraying) is
    stopped by the per-address limit, though no single account reached its own limit; the
    next sign-in from that address — even a correct one — waits."""
    for n in range(5):
        assert _attempt(throttled, f"person{n}@acme.example", "Winter2026!").status_code == 401
    _assert_throttled_page(_attempt(throttled, world.admin.email, world.admin.password))


def test_a_distributed_attack_on_one_account_is_throttled(
    throttled: TestClient, world: World
) -> None:
    """RFC 6749 §10.10: guesses at one account from many addresses (a botnet) are stopped by
    the per-account limit; the owner's correct password waits too, whatever the address."""
    email = world.employee.email
    for n in range(3):
        assert _attempt(throttled, email, f"guess{n}", f"203.0.113.{n}").status_code == 401
    _assert_throttled_page(_attempt(throttled, email, world.employee.password, "198.51.100.7"))
    # The account's name is compared without case or surrounding space: no way around it.
    _assert_throttled_page(_attempt(throttled, f" {email.upper()} ", "x", "198.51.100.8"))


def test_throttling_one_address_does_not_lock_out_another(
    throttled: TestClient, world: World
) -> None:
    """RFC 6749 §10.10: the per-address limit blocks the attacker's address, not everyone:
    a person elsewhere signs in (the account itself was not guessed at)."""
    attacker = "203.0.113.66"
    for n in range(5):
        _attempt(throttled, f"person{n}@acme.example", "guess", attacker)
    _assert_throttled_page(_attempt(throttled, world.admin.email, world.admin.password, attacker))
    signed_in = _attempt(throttled, world.admin.email, world.admin.password, "192.0.2.10")
    assert signed_in.status_code == 303


def test_once_throttled_even_the_right_client_secret_waits(
    throttled: TestClient, world: World
) -> None:
    """RFC 6749 §10.10 / RFC 9700 §2.5: after three wrong secrets for a client id, the
    token endpoint answers 429 to everything for that id, the right secret included — so a
    guessing run learns nothing from the answers while throttled."""
    data = {"grant_type": "refresh_token", "refresh_token": "grt_x"}
    for n in range(3):
        wrong = throttled.post("/oauth/token", data=data, auth=(world.app.client_id, f"gcs_{n}"))
        assert wrong.status_code == 401
    refused = throttled.post("/oauth/token", data=data, auth=basic(world.app))
    assert refused.status_code == 429
    assert refused.json()["error"] == "too_many_requests"
    assert 0 < int(refused.headers["retry-after"]) <= WINDOW + 1
    assert refused.headers["cache-control"] == "no-store"


def test_switching_method_or_endpoint_does_not_reset_the_count(
    throttled: TestClient, world: World
) -> None:
    """RFC 6749 §10.10 / RFC 9700 §2.5: the counter is the client id's, whatever the endpoint and the
    authentication method (HTTP Basic or the body) the guesser uses."""
    client_id = world.app.client_id
    throttled.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        auth=(client_id, "gcs_1"),
    )
    throttled.post(
        "/oauth/revoke", data={"token": "x", "client_id": client_id, "client_secret": "gcs_2"}
    )
    throttled.post("/oauth/introspect", data={"token": "x"}, auth=(client_id, "gcs_3"))
    refused = throttled.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "x",
            "client_id": client_id,
            "client_secret": "gcs_4",
        },
    )
    assert refused.status_code == 429


def test_the_window_passes_and_the_owner_gets_in(world: World, tmp_path) -> None:
    """RFC 6749 §10.10: throttling delays, it does not lock the owner out for good."""
    settings = make_settings(
        tmp_path,
        database_url=world.settings.database_url,
        client_auth_limit_per_client="2/4 seconds",
    )
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as http:
        data = {"token": "gat_x"}
        for n in range(2):
            http.post("/oauth/introspect", data=data, auth=(world.app.client_id, f"gcs_{n}"))
        assert http.post("/oauth/introspect", data=data, auth=basic(world.app)).status_code == 429
        time.sleep(4.2)
        assert http.post("/oauth/introspect", data=data, auth=basic(world.app)).status_code == 200


@pytest.mark.parametrize("endpoint", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
def test_a_failed_client_authentication_is_counted_once_the_unit_of_work_is_over(
    world: World, endpoint: str
) -> None:
    """The throttle's count (a Redis round trip when Redis is configured) never runs inside
    the request's transaction: on SQLite that would hold the write lock across the network.
    The probe opens a writing unit of its own while it counts: were the request's unit still
    open, SQLite's writer queue would make it wait for that unit, which waits for it."""
    import asyncio

    app = create_app(world.settings)
    services = app.state.services
    counted: list[str] = []
    count = services.throttle.client_auth_failed

    async def probe(client_key: str) -> None:
        async with asyncio.timeout(5):
            async with services.db.unit() as uow:
                await uow.accounts.company(world.company_a)
        counted.append(client_key)
        await count(client_key)

    services.throttle.client_auth_failed = probe
    data = {"grant_type": "authorization_code", "code": "x", "token": "x"}
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        response = client.post(endpoint, data=data, auth=basic(world.app, "wrong"))
    assert response.status_code == 401, response.text
    assert counted == [world.app.client_id]
