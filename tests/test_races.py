"""Exactly-once rules under real concurrency: many requests racing on one `grantly serve`
process and its SQLite database (RFC 6749 §4.1.2 for codes, RFC 9700 §4.14.2 for refresh)."""

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


def _code(live_server: LiveServer) -> str:
    with httpx.Client(base_url=live_server.url) as browser:
        sign_in(browser, live_server.world.admin)
        return callback_params(consent(browser, authorize_params(live_server.world.app)))["code"]


def _race(live_server: LiveServer, data: dict[str, str], count: int = 20) -> list[httpx.Response]:
    app = live_server.world.app
    with (
        httpx.Client(
            base_url=live_server.url, timeout=30, limits=httpx.Limits(max_connections=count)
        ) as http,
        ThreadPoolExecutor(max_workers=count) as pool,
    ):
        return list(
            pool.map(
                lambda _: http.post(
                    "/oauth/token", data=data, auth=(app.client_id, app.client_secret or "")
                ),
                range(count),
            )
        )


@pytest.mark.live
def test_a_code_raced_by_twenty_requests_is_redeemed_once(live_server: LiveServer) -> None:
    code = _code(live_server)
    responses = _race(
        live_server,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code != 200)
    assert 500 not in statuses


@pytest.mark.live
def test_a_refresh_token_raced_by_twenty_requests_rotates_once(live_server: LiveServer) -> None:
    code = _code(live_server)
    app = live_server.world.app
    tokens = httpx.post(
        f"{live_server.url}/oauth/token",
        auth=(app.client_id, app.client_secret or ""),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
    ).json()
    responses = _race(
        live_server, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 1, statuses
    assert 500 not in statuses
