"""The throttle's mechanics: counters in the database (no Redis configured) or in Redis (the
machine's real Redis at 127.0.0.1:6379), shared by every process either way, holding no email
or address, failing open when Redis is down. What is counted, and why nobody can lock anyone
out, is ``tests/security/test_brute_force.py``."""

from __future__ import annotations

import uuid

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select

from grantly.app import create_app
from grantly.store import tables as t
from tests.conftest import World, csrf_of, make_settings

REDIS = "redis://127.0.0.1:6379/0"


def _app(world: World, tmp_path, **overrides) -> TestClient:
    limits = {
        "sign_in_limit_per_account_address": "3/minute",
        "client_auth_limit_per_client_address": "3/minute",
    }
    settings = make_settings(
        tmp_path,
        database_url=world.settings.database_url,
        secret_key=world.settings.secret_key,
        **{**limits, **overrides},
    )
    return TestClient(
        create_app(settings),
        base_url="http://127.0.0.1:8000",
        follow_redirects=False,
        client=("192.0.2.44", 5000),
    )


def _login(http: TestClient, email: str, password: str):
    http.cookies.clear()
    page = http.get("/login")
    return http.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text), "next": "/"},
    )


def _wrong_secret(http: TestClient, world: World):
    data = {"grant_type": "authorization_code", "code": "x"}
    return http.post("/oauth/token", data=data, auth=(world.app.client_id, "wrong"))


def test_without_redis_the_counters_are_in_the_database_shared_by_processes(
    world: World, tmp_path
) -> None:
    """Two apps on one database (two workers, two hosts): failures on one count on the other,
    and a new process (a restart) still knows them."""
    with _app(world, tmp_path / "a") as first, _app(world, tmp_path / "b") as second:
        for http in (first, second, first):
            assert _login(http, world.employee.email, "wrong").status_code == 401
        assert _login(second, world.employee.email, world.employee.password).status_code == 429
        for http in (second, first, second):
            assert _wrong_secret(http, world).status_code == 401
        assert _wrong_secret(first, world).status_code == 429
    with _app(world, tmp_path / "c") as restarted:
        assert _login(restarted, world.employee.email, "x").status_code == 429


def test_with_redis_the_counters_are_shared_by_processes(world: World, tmp_path) -> None:
    prefix = f"grantly-test-{uuid.uuid4().hex}"
    with (
        _app(world, tmp_path / "a", redis_url=REDIS, redis_key_prefix=prefix) as first,
        _app(world, tmp_path / "b", redis_url=REDIS, redis_key_prefix=prefix) as second,
    ):
        for http in (first, second, first):
            assert _wrong_secret(http, world).status_code == 401
        assert _wrong_secret(second, world).status_code == 429
        assert first.get("/readyz").json()["redis"] == "ok"
    # Nothing was counted in the database.
    assert _counter_keys(world) == []


def _counter_keys(world: World) -> list[str]:
    async def work(uow):
        return [row.key for row in await uow.tx.rows(select(t.throttle_counters.c.key))]

    return list(world.run(work))


def test_the_counters_hold_no_email_address_or_client_id(world: World, tmp_path) -> None:
    prefix = f"grantly-test-{uuid.uuid4().hex}"
    with _app(world, tmp_path / "db") as http:
        _login(http, world.employee.email, "wrong")
        _wrong_secret(http, world)
    with _app(world, tmp_path / "r", redis_url=REDIS, redis_key_prefix=prefix) as http:
        _login(http, world.employee.email, "wrong")
        _wrong_secret(http, world)
    redis_keys = [k.decode() for k in redis.Redis.from_url(REDIS).keys(f"{prefix}*")]
    keys = _counter_keys(world) + redis_keys
    # Sign-in: address, account and address, account, the company's audit budget; client
    # authentication: address, client and address, the client's audit budget.
    assert len(_counter_keys(world)) == 7 and len(redis_keys) == 7, keys
    for key in keys:
        for secret in (world.employee.email, "employee", "192.0.2.44", world.app.client_id):
            assert secret not in key, key


def test_prune_removes_ended_windows(world: World, tmp_path) -> None:
    import asyncio

    from grantly.store.database import open_database
    from grantly.store.maintenance import prune

    with _app(world, tmp_path) as http:
        _login(http, world.employee.email, "wrong")
    assert len(_counter_keys(world)) == 4  # with the company's audit budget

    async def main() -> None:
        db = open_database(world.settings.database_url)
        try:
            import time

            now = int(time.time()) + 16 * 60  # once the 15-minute windows ended
            await prune(db, now - 7 * 86400, 100, lambda _table, _n: None, now)
        finally:
            await db.close()

    asyncio.run(main())
    assert _counter_keys(world) == []


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


@pytest.mark.parametrize("value", ["ten per minute", "10/fortnight", ""])
def test_a_malformed_limit_is_refused_at_start(tmp_path, value: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        make_settings(tmp_path, sign_in_limit_per_account=value)


def test_ended_windows_are_swept_without_an_operator(world: World, tmp_path, monkeypatch) -> None:
    """Keys an attacker invents (addresses, client ids) cannot pile up between prunes: a
    counter's increment now and then deletes counters whose window ended."""
    import grantly.throttle

    with _app(world, tmp_path, client_auth_limit_per_client_address="5/second") as http:
        _wrong_secret(http, world)
        assert len(_counter_keys(world)) == 3
        import time

        time.sleep(1.1)
        monkeypatch.setattr(grantly.throttle, "SWEEP_CHANCE", 1.0)
        _login(http, world.employee.email, "wrong")
    keys = _counter_keys(world)
    assert not any("client_auth_per_client_address" in key for key in keys), keys
    assert any("sign_in_per_account" in key for key in keys)


def test_an_ipv6_address_counts_as_its_64(world: World, tmp_path) -> None:
    """Rotating addresses inside one /64 (one host's or one home's) does not reset a count;
    another /64 is another address."""
    from grantly.throttle import Limits, Throttle

    async def main() -> None:
        from grantly.store.database import open_database

        db = open_database(world.settings.database_url)
        try:
            throttle = Throttle(redis_url=None, db=db, secret_key="k", limits=Limits())
            key = throttle.address_key
            assert key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff:ffff:ffff:ffff")
            assert key("2001:db8:1:2::1") != key("2001:db8:1:3::1")
            assert key("::ffff:192.0.2.1") == key("192.0.2.1") != key("192.0.2.2")
        finally:
            await db.close()

    import asyncio

    asyncio.run(main())
