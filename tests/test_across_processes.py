"""Guarantees across processes: two `grantly serve` on one database, as two hosts behind a load
balancer (the suite's PostgreSQL run is the production case; the SQLite run checks that a file
shared by processes keeps them too)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import (
    REDIRECT_URI,
    LiveServer,
    authorize_params,
    callback_params,
    consent,
    sign_in,
)

pytestmark = pytest.mark.live


def _code(server: LiveServer) -> str:
    with httpx.Client(base_url=server.url) as browser:
        sign_in(browser, server.world.admin)
        return callback_params(consent(browser, authorize_params(server.world.app)))["code"]


def _tokens(server: LiveServer) -> dict[str, str]:
    """A user grant on ``server``: authorize, allow, exchange."""
    app = server.world.app
    return httpx.post(
        f"{server.url}/oauth/token",
        auth=(app.client_id, app.client_secret or ""),
        data={
            "grant_type": "authorization_code",
            "code": _code(server),
            "redirect_uri": REDIRECT_URI,
        },
    ).json()


def _race(
    servers: tuple[LiveServer, LiveServer], data: dict[str, str], count: int = 20
) -> list[int]:
    app = servers[0].world.app
    auth = (app.client_id, app.client_secret or "")

    def post(index: int) -> int:
        server = servers[index % 2]
        return httpx.post(f"{server.url}/oauth/token", data=data, auth=auth, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(post, range(count)))


def test_a_code_raced_across_two_processes_is_redeemed_once(two_servers) -> None:
    code = _code(two_servers[0])
    statuses = _race(
        two_servers,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
    )
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 400}, statuses


def test_a_refresh_token_rotates_once_across_two_processes(two_servers) -> None:
    tokens = _tokens(two_servers[0])
    statuses = _race(
        two_servers, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 400}, statuses


def test_a_revocation_answered_by_one_process_is_honoured_by_the_other(two_servers) -> None:
    first, second = two_servers
    app = first.world.app
    token = _tokens(first)["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{second.url}/api/v1/me", headers=headers).status_code == 200
    revoked = httpx.post(
        f"{first.url}/oauth/revoke",
        data={"token": token},
        auth=(app.client_id, app.client_secret or ""),
    )
    assert revoked.status_code == 200
    assert httpx.get(f"{second.url}/api/v1/me", headers=headers).status_code == 401


def test_a_sign_in_on_one_process_is_valid_on_the_other(two_servers) -> None:
    first, second = two_servers
    with httpx.Client(base_url=first.url) as browser:
        sign_in(browser, first.world.admin)
        cookie = browser.cookies.get("grantly_session")
    with httpx.Client(base_url=second.url, cookies={"grantly_session": cookie}) as other:
        assert other.get("/oauth/applications").status_code == 200


def test_racing_company_token_exchanges_leave_one_company_token(two_servers) -> None:
    """Factorial's rule, one company token per application and company, holds when several
    company codes are exchanged at once on two processes: exactly the last one stays valid."""
    first, _second = two_servers
    app = first.world.app
    with httpx.Client(base_url=first.url) as browser:
        sign_in(browser, first.world.admin)
        codes = [
            callback_params(consent(browser, authorize_params(app, resource_owner_type="company")))[
                "code"
            ]
            for _ in range(8)
        ]
    auth = (app.client_id, app.client_secret or "")

    def exchange_one(index: int) -> str:
        response = httpx.post(
            f"{two_servers[index % 2].url}/oauth/token",
            auth=auth,
            data={
                "grant_type": "authorization_code",
                "code": codes[index],
                "redirect_uri": REDIRECT_URI,
            },
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    with ThreadPoolExecutor(max_workers=len(codes)) as pool:
        tokens = list(pool.map(exchange_one, range(len(codes))))
    active = [
        token
        for token in tokens
        if httpx.post(f"{first.url}/oauth/introspect", auth=auth, data={"token": token}).json()[
            "active"
        ]
    ]
    assert len(active) == 1, f"{len(active)} company tokens are active at once"


def test_the_throttle_counts_the_same_on_every_process(two_servers) -> None:
    """Without Redis the throttle's counters are in the database: failures sent to either
    process add up (20 wrong secrets per client and address a minute, by default), and the
    client's correct secret is still served by both."""
    app = two_servers[0].world.app
    data = {"grant_type": "refresh_token", "refresh_token": "grt_x"}
    answers = [
        httpx.post(
            f"{two_servers[n % 2].url}/oauth/token", data=data, auth=(app.client_id, "x")
        ).status_code
        for n in range(21)
    ]
    assert answers == [401] * 20 + [429]
    for server in two_servers:
        served = httpx.post(
            f"{server.url}/oauth/token", data=data, auth=(app.client_id, app.client_secret or "")
        )
        assert served.status_code == 400 and served.json()["error"] == "invalid_grant"
