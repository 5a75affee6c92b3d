"""Threat: guessing passwords and client secrets (RFC 6749 §10.10 credentials-guessing attacks;
RFC 9700 §2.5 client authentication; OWASP's authentication guidance and its device cookies),
and its twin: a stranger who knows a public identifier (a client id, an email address) using
the throttle to deny its owner service.

- Client authentication: a correct credential is always served. Failures count per address and
  per (client, address); past a limit the failures from there get 429.
- Sign-in: a browser that signed in to the account before counts on its own. Any other browser
  counts per (account, address), per address and per account; past a limit it is refused
  without checking the password, so a guessing run learns nothing while throttled.

Covered elsewhere: counters shared by processes in the database and in Redis, failing open when
Redis is down (``tests/web/test_throttling.py``); 256-bit secrets compared in constant time
(``tests/oauth/test_clients.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from grantly.app import create_app
from tests.conftest import World, csrf_of, make_settings
from tests.security.conftest import audit_trail, basic

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
    """The app with small limits, per minute: sign-in 3 per account and address, 5 per
    address, 4 per account, 3 per known device; client authentication 3 per client and
    address, 6 per address."""
    settings = make_settings(
        tmp_path,
        database_url=world.settings.database_url,
        sign_in_limit_per_account_address="3/minute",
        sign_in_limit_per_address="5/minute",
        sign_in_limit_per_account="4/minute",
        sign_in_limit_per_device="3/minute",
        client_auth_limit_per_client_address="3/minute",
        client_auth_limit_per_address="6/minute",
    )
    with TestClient(
        _addressed(create_app(settings)), base_url="http://127.0.0.1:8000", follow_redirects=False
    ) as http:
        yield http


def _attempt(
    http: TestClient, email: str, password: str, address: str = "192.0.2.1", *, fresh: bool = True
):
    """A sign-in at ``address``: from a fresh browser, or (``fresh=False``) from the browser
    ``http`` is, with its cookies (its device cookie)."""
    if fresh:
        http.cookies.clear()
    else:
        http.cookies.delete("grantly_session")
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


def _token(http: TestClient, secret: str, address: str, client_id: str):
    return http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": "grt_x"},
        auth=(client_id, secret),
        headers={"X-Test-Address": address},
    )


def test_password_spraying_from_one_address_is_throttled(
    throttled: TestClient, world: World
) -> None:
    """RFC 6749 §10.10: one address trying one password on many accounts (spraying) is
    stopped by the per-address limit, though no single account reached its own limit; the
    next sign-in from that address — even a correct one — waits."""
    for n in range(5):
        assert _attempt(throttled, f"person{n}@acme.example", "Winter2026!").status_code == 401
    _assert_throttled_page(_attempt(throttled, world.admin.email, world.admin.password))


def test_a_stranger_cannot_lock_a_client_out(throttled: TestClient, world: World) -> None:
    """Finding 1 of the attack report: wrong secrets for a known client id (it is in every
    authorize URL) made the token endpoint answer 429 to the client's correct secret. The
    failures now count for the attacker's address; the correct secret is served from
    anywhere, the attacker's address included, however many failures came before."""
    attacker, owner = "203.0.113.66", "198.51.100.20"
    answers = [
        _token(throttled, f"gcs_{n}", attacker, world.app.client_id).status_code for n in range(25)
    ]
    assert answers[:3] == [401] * 3 and set(answers[3:]) == {429}
    for address in (owner, attacker):
        served = _token(throttled, world.app.client_secret or "", address, world.app.client_id)
        assert served.status_code == 400, (address, served.text)  # past authentication
        assert served.json()["error"] == "invalid_grant"


def test_a_throttled_failure_says_when_to_retry(throttled: TestClient, world: World) -> None:
    for n in range(3):
        _token(throttled, f"gcs_{n}", "203.0.113.1", world.app.client_id)
    refused = _token(throttled, "gcs_again", "203.0.113.1", world.app.client_id)
    assert refused.status_code == 429
    assert refused.json()["error"] == "too_many_requests"
    assert 0 < int(refused.headers["retry-after"]) <= WINDOW + 1
    assert refused.headers["cache-control"] == "no-store"


def test_an_address_guessing_at_many_clients_is_throttled(
    throttled: TestClient, world: World
) -> None:
    """The per-address limit: failures spread over client ids add up at the address."""
    for n in range(6):
        client_id = world.app.client_id if n % 2 else world.other_app.client_id
        assert _token(throttled, f"gcs_{n}", "203.0.113.7", client_id).status_code == 401
    assert _token(throttled, "gcs_x", "203.0.113.7", "gci_unknown").status_code == 429
    # Another address is unaffected.
    assert _token(throttled, "gcs_x", "203.0.113.8", world.app.client_id).status_code == 401


def test_reaching_the_limit_is_audited_once_not_every_failure(
    throttled: TestClient, world: World
) -> None:
    """Failures past the limit are not written one by one: an attacker cannot fill the audit
    trail (or the database) with them. Reaching the limit is one event."""
    for n in range(30):
        _token(throttled, f"gcs_{n}", "203.0.113.9", world.app.client_id)
    trail = [t.event for t in audit_trail(world) if t.application_id == world.app.id]
    assert trail.count("client.authentication_failed") == 3
    assert trail.count("client.authentication_throttled") == 1


@pytest.mark.parametrize("path", ["/oauth/revoke", "/oauth/introspect"])
def test_the_other_client_endpoints_count_by_address_too(
    throttled: TestClient, world: World, path: str
) -> None:
    headers = {"X-Test-Address": "203.0.113.10"}
    for n in range(3):
        throttled.post(path, data={"token": "t"}, auth=basic(world.app, f"x{n}"), headers=headers)
    assert (
        throttled.post(path, data={"token": "t"}, auth=basic(world.app, "y"), headers=headers)
    ).status_code == 429
    assert (
        throttled.post(path, data={"token": "t"}, auth=basic(world.app), headers=headers)
    ).status_code == 200


def test_switching_method_or_endpoint_does_not_reset_the_count(
    throttled: TestClient, world: World
) -> None:
    """The count is the address's for the client, whatever the endpoint and the
    authentication method (HTTP Basic or the body)."""
    client_id = world.app.client_id
    headers = {"X-Test-Address": "203.0.113.11"}
    throttled.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        auth=(client_id, "gcs_1"),
        headers=headers,
    )
    throttled.post(
        "/oauth/revoke",
        data={"token": "x", "client_id": client_id, "client_secret": "gcs_2"},
        headers=headers,
    )
    throttled.post(
        "/oauth/introspect", data={"token": "x"}, auth=(client_id, "gcs_3"), headers=headers
    )
    refused = throttled.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "x",
            "client_id": client_id,
            "client_secret": "gcs_4",
        },
        headers=headers,
    )
    assert refused.status_code == 429


def test_a_stranger_cannot_lock_a_person_out(throttled: TestClient, world: World) -> None:
    """Finding 2 of the attack report: 24 wrong passwords for an email locked its owner out.
    Now the attacker's address is throttled for the account; the owner signs in from their
    own address, and from the browser they used before even at the attacker's address."""
    email, password = world.employee.email, world.employee.password
    with TestClient(
        throttled.app, base_url="http://127.0.0.1:8000", follow_redirects=False
    ) as owners_browser:
        assert _attempt(owners_browser, email, password, "203.0.113.50").status_code == 303
        for n in range(24):
            answer = _attempt(throttled, email, f"guess{n}", "203.0.113.50").status_code
            assert answer in (401, 429)
        _assert_throttled_page(_attempt(throttled, email, password, "203.0.113.50"))
        # The owner: elsewhere, in a fresh browser; and in the browser used before, anywhere.
        assert _attempt(throttled, email, password, "198.51.100.30").status_code == 303
        again = _attempt(owners_browser, email, password, "203.0.113.50", fresh=False)
        assert again.status_code == 303
    assert "sign_in.throttled" in [t.event for t in audit_trail(world)]


def test_a_distributed_attack_on_one_account_only_blocks_unknown_browsers(
    throttled: TestClient, world: World
) -> None:
    """Guesses at one account from many addresses (a botnet) reach the per-account limit:
    browsers the account was never used on are refused without a password check, so the
    guessing stops; the owner's known browser still signs in (OWASP's device cookies)."""
    email, password = world.employee.email, world.employee.password
    with TestClient(
        throttled.app, base_url="http://127.0.0.1:8000", follow_redirects=False
    ) as owners_browser:
        assert _attempt(owners_browser, email, password, "198.51.100.7").status_code == 303
        for n in range(4):
            assert _attempt(throttled, email, f"guess{n}", f"203.0.113.{n}").status_code == 401
        refused = _attempt(throttled, email, password, "198.51.100.8")
        _assert_throttled_page(refused)
        assert "browser you signed in with before" in refused.text
        # The account's name is compared without case or surrounding space: no way around it.
        _assert_throttled_page(_attempt(throttled, f" {email.upper()} ", "x", "198.51.100.9"))
        assert (
            _attempt(owners_browser, email, password, "198.51.100.10", fresh=False).status_code
            == 303
        )
    trail = [t for t in audit_trail(world) if t.event == "sign_in.throttled"]
    assert [t.detail["limit"] for t in trail] == ["account"]
    assert trail[0].actor_user_id == world.employee.id


def test_a_known_browser_has_a_limit_of_its_own(throttled: TestClient, world: World) -> None:
    """A stolen laptop's cookie is no skeleton key: guesses from a known browser are
    throttled for that browser (3 here), and the password is not checked while throttled."""
    email, password = world.employee.email, world.employee.password
    assert _attempt(throttled, email, password).status_code == 303
    for n in range(3):
        assert _attempt(throttled, email, f"guess{n}", fresh=False).status_code == 401
    _assert_throttled_page(_attempt(throttled, email, password, fresh=False))


def test_a_forged_or_foreign_device_cookie_is_an_unknown_browser(
    throttled: TestClient, world: World
) -> None:
    email = world.employee.email
    assert _attempt(throttled, world.admin.email, world.admin.password).status_code == 303
    admins_cookie = throttled.cookies.get("grantly_device", path="/login")
    assert admins_cookie
    for cookie in (admins_cookie, admins_cookie[:-2] + "xx", "garbage"):
        throttled.cookies.clear()
        throttled.cookies.set("grantly_device", cookie, path="/login")
        for n in range(3):
            _attempt(throttled, email, f"guess{n}", "203.0.113.70", fresh=False)
        _assert_throttled_page(
            _attempt(throttled, email, world.employee.password, "203.0.113.70", fresh=False)
        )


def test_the_window_passes_and_the_owner_gets_in(world: World, tmp_path) -> None:
    """RFC 6749 §10.10: throttling delays, it does not lock anyone out for good."""
    settings = make_settings(
        tmp_path,
        database_url=world.settings.database_url,
        sign_in_limit_per_account_address="2/4 seconds",
    )
    with TestClient(
        create_app(settings), base_url="http://127.0.0.1:8000", follow_redirects=False
    ) as http:
        for n in range(2):
            _attempt(http, world.employee.email, f"guess{n}")
        _assert_throttled_page(_attempt(http, world.employee.email, world.employee.password))
        time.sleep(4.2)
        assert _attempt(http, world.employee.email, world.employee.password).status_code == 303


@pytest.mark.parametrize("endpoint", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
def test_a_failed_client_authentication_is_counted_once_the_unit_of_work_is_over(
    world: World, endpoint: str
) -> None:
    """The throttle's count (a Redis round trip, or a write of its own) never runs inside the
    request's transaction: on SQLite that would hold the write lock across the network. The
    probe opens a writing unit of its own while it counts: were the request's unit still
    open, SQLite's writer queue would make it wait for that unit, which waits for it."""
    import asyncio

    app = create_app(world.settings)
    services = app.state.services
    counted: list[str] = []
    count = services.throttle.client_auth_failed

    async def probe(client_key: str, address: str):
        async with asyncio.timeout(5):
            async with services.db.unit() as uow:
                await uow.accounts.company(world.company_a)
        counted.append(client_key)
        return await count(client_key, address)

    services.throttle.client_auth_failed = probe
    data = {"grant_type": "authorization_code", "code": "x", "token": "x"}
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        response = client.post(endpoint, data=data, auth=basic(world.app, "wrong"))
    assert response.status_code == 401, response.text
    assert counted == [world.app.client_id]


def test_guesses_sent_at_once_get_no_further_than_the_limit(world: World, tmp_path) -> None:
    """An attempt is counted before its password is checked: 40 guesses sent together, with
    the right password last, see at most the limit checked (3 per account and address here),
    the rest refused unchecked, and the right one among the refused: it does not sign in."""
    import asyncio

    import httpx

    settings = make_settings(
        tmp_path,
        database_url=world.settings.database_url,
        sign_in_limit_per_account_address="3/minute",
    )
    app = create_app(settings)

    async def main() -> list[int]:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.99", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
            page = await http.get("/login")
            token = csrf_of(page.text)
            passwords = [f"guess{n}" for n in range(39)] + [world.employee.password]

            async def one(password: str) -> int:
                response = await http.post(
                    "/login",
                    data={
                        "email": world.employee.email,
                        "password": password,
                        "csrf_token": token,
                        "next": "/",
                    },
                )
                return response.status_code

            return await asyncio.gather(*(one(p) for p in passwords))

    answers = asyncio.run(main())
    assert answers.count(401) <= 3, answers
    assert answers.count(429) >= 37 and 303 not in answers, answers


def test_the_audit_trail_of_a_client_is_bounded_across_addresses(
    throttled: TestClient, world: World
) -> None:
    """Failures from many addresses, each under its own limit, are written one by one only up
    to a budget per client id (30 a minute); the rest are counted, not written. The budget
    changes what is written, never what is answered."""
    for n in range(45):
        answer = _token(throttled, "gcs_bad", f"203.0.113.{n}", world.app.client_id)
        assert answer.status_code == 401
    trail = [t.event for t in audit_trail(world) if t.application_id == world.app.id]
    assert trail.count("client.authentication_failed") == 30
    assert (
        _token(
            throttled, world.app.client_secret or "", "203.0.113.1", world.app.client_id
        ).status_code
        == 400
    )
