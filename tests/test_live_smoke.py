"""A real `grantly serve` process answers."""

import httpx
import pytest


@pytest.mark.live
def test_grantly_serve_answers_health_and_metadata(live_server) -> None:
    assert httpx.get(f"{live_server.url}/healthz").json() == {"status": "ok"}
    login = httpx.get(f"{live_server.url}/login")
    assert login.status_code == 200
    assert "grantly_session" in login.headers["set-cookie"]
