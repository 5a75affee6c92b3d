"""Signing in and out: sessions, CSRF, and no open redirect after sign-in."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from tests.conftest import World, csrf_of, sign_in


def _login(client: TestClient, email: str, password: str, next_path: str = "/"):
    page = client.get("/login")
    return client.post(
        "/login",
        data={
            "email": email,
            "password": password,
            "csrf_token": csrf_of(page.text),
            "next": next_path,
        },
    )


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(
    client: TestClient, world: World
) -> None:
    response = _login(client, world.admin.email, "wrong password")
    assert response.status_code == 401
    assert "The email or password is not right" in response.text
    unknown = _login(client, "nobody@acme.example", "whatever pass")
    assert unknown.status_code == 401
    assert "The email or password is not right" in unknown.text


def test_the_session_cookie_is_httponly_and_samesite_lax(client: TestClient, world: World) -> None:
    response = _login(client, world.admin.email, world.admin.password)
    cookie = response.headers["set-cookie"].lower()
    assert "grantly_session=" in cookie
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie  # the issuer is http://127.0.0.1 in tests


def test_the_session_is_replaced_at_sign_in(client: TestClient, world: World) -> None:
    page = client.get("/login")
    before_csrf = csrf_of(page.text)
    before_cookie = client.cookies.get("grantly_session")
    response = client.post(
        "/login",
        data={
            "email": world.admin.email,
            "password": world.admin.password,
            "csrf_token": before_csrf,
            "next": "/",
        },
    )
    assert response.status_code == 303
    assert client.cookies.get("grantly_session") != before_cookie
    home = client.get("/")
    assert csrf_of(home.text) != before_csrf


def test_sign_in_never_redirects_off_site(client: TestClient, world: World) -> None:
    for target in (
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
    ):
        client.cookies.clear()
        response = _login(client, world.admin.email, world.admin.password, target)
        assert response.status_code == 303
        assert response.headers["location"] == "/", target


def test_sign_in_needs_the_csrf_token(client: TestClient, world: World) -> None:
    client.get("/login")
    response = client.post(
        "/login",
        data={"email": world.admin.email, "password": world.admin.password, "csrf_token": "x"},
    )
    assert response.status_code == 403


def test_sign_out_ends_the_session_even_for_a_copied_cookie(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    home = client.get("/")
    assert home.status_code == 200
    copied = client.cookies.get("grantly_session")
    out = client.post("/logout", data={"csrf_token": csrf_of(home.text)})
    assert out.status_code == 303
    assert client.get("/").status_code == 303
    client.cookies.set("grantly_session", copied)
    assert client.get("/oauth/applications").status_code == 303


def test_a_deactivated_user_cannot_sign_in(client: TestClient, world: World) -> None:

    world.run(lambda uow: uow.accounts.deactivate(world.employee.id, int(time.time())))
    assert _login(client, world.employee.email, world.employee.password).status_code == 401


def test_a_deactivated_users_open_session_stops_working(client: TestClient, world: World) -> None:

    sign_in(client, world.admin)
    world.run(lambda uow: uow.accounts.deactivate(world.admin.id, int(time.time())))
    assert client.get("/oauth/applications").status_code == 303


def test_every_page_forbids_framing(client: TestClient, world: World) -> None:
    for path in ("/login", "/oauth/authorize?client_id=x"):
        response = client.get(path)
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_cookies_are_secure_when_the_issuer_is_https(tmp_path, world: World) -> None:
    from grantly.app import create_app
    from tests.conftest import make_settings

    settings = make_settings(
        tmp_path, issuer="https://auth.example", database_url=world.settings.database_url
    )
    with TestClient(create_app(settings), base_url="https://auth.example") as https_client:
        cookie = https_client.get("/login").headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie
