"""Throttling of sign-in and client-authentication failures (RFC 9700 §4.10), in the process or
in Redis (the machine's real Redis at 127.0.0.1:6379), with 429 and Retry-After."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from grantly.app import create_app
from tests.conftest import World, csrf_of, make_settings

REDIS = "redis://127.0.0.1:6379/0"


def _app(world: World, tmp_path, **overrides) -> TestClient:
    settings = make_settings(
        tmp_path,
        database_url=world.settings.database_url,
        sign_in_limit_per_account="3/minute",
        sign_in_limit_per_address="20/minute",
        client_auth_limit_per_client="3/minute",
        **overrides,
    )
    return TestClient(
        create_app(settings), base_url="http://127.0.0.1:8000", follow_redirects=False
    )


def _login(http: TestClient, email: str, password: str):
    page = http.get("/login")
    return http.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text), "next": "/"},
    )


def test_repeated_sign_in_failures_for_an_account_get_429(world: World, tmp_path) -> None:
    with _app(world, tmp_path) as http:
        for _ in range(3):
            assert _login(http, world.employee.email, "wrong password").status_code == 401
        refused = _login(http, world.employee.email, world.employee.password)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert "Too many sign-in attempts" in refused.text
        # Another account is not slowed down by these failures.
        assert _login(http, world.admin.email, world.admin.password).status_code == 303


def test_successful_sign_ins_are_never_throttled(world: World, tmp_path) -> None:
    with _app(world, tmp_path) as http:
        for _ in range(6):
            http.cookies.clear()
            assert _login(http, world.admin.email, world.admin.password).status_code == 303


def test_repeated_client_authentication_failures_get_429(world: World, tmp_path) -> None:
    with _app(world, tmp_path) as http:
        data = {"grant_type": "authorization_code", "code": "x"}
        for _ in range(3):
            response = http.post("/oauth/token", data=data, auth=(world.app.client_id, "wrong"))
            assert response.status_code == 401
        refused = http.post("/oauth/token", data=data, auth=(world.app.client_id, "wrong"))
        assert refused.status_code == 429
        assert refused.json()["error"] == "too_many_requests"
        assert int(refused.headers["retry-after"]) > 0
        other = http.post("/oauth/token", data=data, auth=(world.other_app.client_id, "wrong"))
        assert other.status_code == 401


@pytest.mark.parametrize("path", ["/oauth/revoke", "/oauth/introspect"])
def test_revocation_and_introspection_failures_count_too(world: World, tmp_path, path: str) -> None:
    with _app(world, tmp_path) as http:
        for _ in range(3):
            http.post(path, data={"token": "t"}, auth=(world.app.client_id, "wrong"))
        assert (
            http.post(path, data={"token": "t"}, auth=(world.app.client_id, "wrong")).status_code
            == 429
        )


def test_with_redis_the_counters_are_shared_by_processes(world: World, tmp_path) -> None:
    prefix = f"grantly-test-{uuid.uuid4().hex}"
    with (
        _app(world, tmp_path / "a", redis_url=REDIS, redis_key_prefix=prefix) as first,
        _app(world, tmp_path / "b", redis_url=REDIS, redis_key_prefix=prefix) as second,
    ):
        data = {"grant_type": "authorization_code", "code": "x"}
        for http in (first, second, first):
            assert (
                http.post(
                    "/oauth/token", data=data, auth=(world.app.client_id, "wrong")
                ).status_code
                == 401
            )
        assert (
            second.post("/oauth/token", data=data, auth=(world.app.client_id, "wrong")).status_code
            == 429
        )
        assert first.get("/readyz").json()["redis"] == "ok"


def test_readyz_reports_an_unreachable_redis(world: World, tmp_path) -> None:
    with _app(world, tmp_path, redis_url="redis://127.0.0.1:1/0") as http:
        response = http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["redis"] == "unreachable"


def test_an_unreachable_redis_does_not_lock_anyone_out(world: World, tmp_path) -> None:
    with _app(world, tmp_path, redis_url="redis://127.0.0.1:1/0") as http:
        for _ in range(5):
            assert _login(http, world.employee.email, "wrong password").status_code == 401
        assert _login(http, world.employee.email, world.employee.password).status_code == 303
