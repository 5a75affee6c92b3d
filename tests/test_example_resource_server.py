"""examples/resource_server.py: a separate service protected by Grantly's introspection."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    REDIRECT_URI,
    LiveServer,
    authorize_params,
    callback_params,
    consent,
    free_port,
    sign_in,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "resource_server.py"


@pytest.fixture
def resource_server(live_server: LiveServer) -> Iterator[str]:
    # The resource server is an application of the same company, with its own credentials.
    rs = live_server.grantly(
        "apps",
        "create",
        "--company",
        str(live_server.world.company_a),
        "--name",
        "Reports API",
        "--redirect-uri",
        "https://reports.example/cb",
    )
    port = free_port()
    env = dict(
        os.environ,
        GRANTLY_URL=live_server.url,
        RS_CLIENT_ID=rs["client_id"],
        RS_CLIENT_SECRET=rs["client_secret"],
    )
    process = subprocess.Popen([sys.executable, str(EXAMPLE), "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/reports", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the example resource server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _token(live_server: LiveServer, **extra: str) -> dict:
    app = live_server.world.app
    with httpx.Client(base_url=live_server.url) as browser:
        sign_in(browser, live_server.world.employee)
        code = callback_params(consent(browser, authorize_params(app, **extra)))["code"]
    return httpx.post(
        f"{live_server.url}/oauth/token",
        auth=(app.client_id, app.client_secret or ""),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
    ).json()


@pytest.mark.live
def test_the_example_serves_a_valid_token_and_says_who_asked(
    live_server: LiveServer, resource_server: str
) -> None:
    token = _token(live_server)["access_token"]
    response = httpx.get(f"{resource_server}/reports", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.json()
    assert body["company_id"] == live_server.world.company_a
    assert body["requested_by"] == f"user:{live_server.world.employee.id}"


@pytest.mark.live
def test_the_example_refuses_a_token_revoked_at_grantly_on_the_next_request(
    live_server: LiveServer, resource_server: str
) -> None:
    token = _token(live_server)["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{resource_server}/reports", headers=headers).status_code == 200
    app = live_server.world.app
    httpx.post(
        f"{live_server.url}/oauth/revoke",
        data={"token": token},
        auth=(app.client_id, app.client_secret or ""),
    )
    response = httpx.get(f"{resource_server}/reports", headers=headers)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.live
def test_the_example_asks_for_a_token_and_checks_its_scope(
    live_server: LiveServer, resource_server: str
) -> None:
    missing = httpx.get(f"{resource_server}/reports")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="reports"'
    write_only = _token(live_server, scope="write")["access_token"]
    response = httpx.get(
        f"{resource_server}/reports", headers={"Authorization": f"Bearer {write_only}"}
    )
    assert response.status_code == 403
    assert 'scope="read"' in response.headers["www-authenticate"]
