"""Structured logs with a request id that never hold a secret; Prometheus metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import (
    REDIRECT_URI,
    LiveServer,
    World,
    authorize_params,
    callback_params,
    consent,
    exchange,
    free_port,
    obtain_code,
    server_env,
    sign_in,
)


def _metric(client: TestClient, line_start: str) -> float:
    metrics = client.get("/metrics")
    assert metrics.status_code == 200, metrics.text
    for line in metrics.text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_tokens_authorizations_and_errors(client: TestClient, world: World) -> None:
    issued = 'grantly_tokens_issued_total{owner_type="user"}'
    granted = 'grantly_authorizations_total{outcome="granted"}'
    invalid_grant = 'grantly_oauth_errors_total{endpoint="/oauth/token",error="invalid_grant"}'
    before = {name: _metric(client, name) for name in (issued, granted, invalid_grant)}
    code = obtain_code(client, world)
    exchange(client, world.app, code)
    exchange(client, world.app, code)
    assert _metric(client, issued) == before[issued] + 1
    assert _metric(client, granted) == before[granted] + 1
    assert _metric(client, invalid_grant) == before[invalid_grant] + 1
    latency = client.get("/metrics").text
    assert (
        'grantly_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/oauth/token"'
        in latency
    )


def test_every_response_carries_a_request_id(client: TestClient, world: World) -> None:
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    hostile = client.get("/healthz", headers={"X-Request-ID": 'a" injected'}).headers[
        "x-request-id"
    ]
    assert hostile != 'a" injected'


@pytest.mark.live
def test_the_logs_of_a_full_flow_hold_no_secret_code_or_token(live_server: LiveServer) -> None:
    world, url = live_server.world, live_server.url
    app = world.app
    with httpx.Client(base_url=url) as browser:
        sign_in(browser, world.admin)
        code = callback_params(consent(browser, authorize_params(app, state="s")))["code"]
    # Factorial's discouraged form: everything, the secret included, in the query string.
    tokens = httpx.post(
        f"{url}/oauth/token",
        params={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": app.client_id,
            "client_secret": app.client_secret,
        },
    ).json()
    refreshed = httpx.post(
        f"{url}/oauth/token",
        auth=(app.client_id, app.client_secret or ""),
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    ).json()
    httpx.get(f"{url}/api/v1/me", headers={"Authorization": f"Bearer {refreshed['access_token']}"})
    httpx.post(
        f"{url}/oauth/revoke",
        data={"token": refreshed["refresh_token"]},
        auth=(app.client_id, app.client_secret or ""),
    )
    httpx.post(
        f"{url}/oauth/token",
        data={"grant_type": "authorization_code", "code": code},
        auth=(app.client_id, app.client_secret or ""),
    )  # a replay, logged as an error
    time.sleep(0.5)
    log = live_server.log_path.read_text()
    for secret in (
        app.client_secret,
        code,
        tokens["access_token"],
        tokens["refresh_token"],
        refreshed["access_token"],
        refreshed["refresh_token"],
        world.admin.password,
    ):
        assert secret and secret not in log, secret[:6]
    requests = [
        json.loads(line)
        for line in log.splitlines()
        if line.startswith("{") and '"event": "request"' in line
    ]
    token_lines = [r for r in requests if r["path"] == "/oauth/token"]
    assert len(token_lines) == 3
    assert all(r["request_id"] and r["status"] in (200, 400) for r in token_lines)
    assert all("?" not in r["path"] for r in requests)


@pytest.mark.live
def test_serve_with_two_workers_answers_and_reports_metrics(world: World, tmp_path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = server_env(world.settings, url)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "grantly.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "did not start"
            time.sleep(0.2)
        for _ in range(10):
            httpx.get(f"{url}/healthz")
        metrics = httpx.get(f"{url}/metrics").text
        count = [
            line
            for line in metrics.splitlines()
            if line.startswith(
                'grantly_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"}'
            )
        ]
        assert count and float(count[0].rsplit(" ", 1)[1]) >= 10
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_errors_at_revocation_and_introspection_are_counted_by_rfc_code(
    client: TestClient, world: World
) -> None:
    for path in ("/oauth/revoke", "/oauth/introspect"):
        name = f'grantly_oauth_errors_total{{endpoint="{path}",error="invalid_client"}}'
        before = _metric(client, name)
        client.post(path, data={"token": "t"}, auth=(world.app.client_id, "wrong"))
        assert _metric(client, name) == before + 1
