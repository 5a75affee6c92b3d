"""`grantly dev mint`: benchmark inputs minted through the protocol core, refused outside
development, and accepted by the real endpoints exactly like codes and tokens from the browser
flow."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from grantly.cli import app
from grantly.settings import Settings

from .conftest import REDIRECT_URI, World


@pytest.fixture
def mint(settings: Settings, world: World):
    runner = CliRunner()
    env = {
        "GRANTLY_DATABASE_URL": settings.database_url,
        "GRANTLY_DATA_DIR": str(settings.data_dir),
        "GRANTLY_ENV": "development",
    }

    def run(kind: str, count: int = 1, *extra: str, code: int = 0, **extra_env: str):
        args = [
            "dev",
            "mint",
            "--client-id",
            world.app.client_id,
            "--user-email",
            world.employee.email,
            "--redirect-uri",
            REDIRECT_URI,
            "--kind",
            kind,
            "--count",
            str(count),
            *extra,
        ]
        result = runner.invoke(app, args, env={**env, **extra_env})
        assert result.exit_code == code, (result.exit_code, result.output)
        return result

    return run


def _basic(world: World) -> dict[str, str]:
    pair = f"{world.app.client_id}:{world.app.client_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def _values(result) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.strip()]


def test_refuses_outside_development_and_says_how(mint) -> None:
    for env in ("production", "test"):
        result = mint("code", 1, code=2, GRANTLY_ENV=env)
        assert "GRANTLY_ENV=development" in result.output
        assert "--i-know" in result.output
        assert not any(line.startswith("gac_") for line in result.stdout.splitlines())
    assert _values(mint("code", 1, "--i-know", GRANTLY_ENV="production"))[0].startswith("gac_")


def test_refuses_a_request_the_authorize_endpoint_would_refuse(mint) -> None:
    result = mint("code", 1, "--scope", "admin", code=1)
    assert "refused" in result.output


def test_minted_codes_are_accepted_once_by_the_token_endpoint(
    mint, client: TestClient, world: World
) -> None:
    codes = _values(mint("code", 3, "--scope", "read"))
    assert len(codes) == len(set(codes)) == 3
    for code in codes:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
        first = client.post("/oauth/token", data=data, headers=_basic(world))
        assert first.status_code == 200, first.text
        assert first.json()["scope"] == "read"
        again = client.post("/oauth/token", data=data, headers=_basic(world))
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"


def test_minted_refresh_tokens_refresh(mint, client: TestClient, world: World) -> None:
    tokens = _values(mint("refresh_token", 2))
    assert all(t.startswith("grt_") for t in tokens)
    for token in tokens:
        response = client.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": token},
            headers=_basic(world),
        )
        assert response.status_code == 200, response.text
        assert response.json()["refresh_token"] != token


def test_minted_access_tokens_open_the_api(mint, client: TestClient, world: World) -> None:
    result = mint("access_token", 2, "--json")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["kind"] == "access_token" and data["count"] == 2
    for token in data["values"]:
        response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        assert response.json()["user"]["email"] == world.employee.email


def test_many_values_are_minted_in_batches_with_progress(mint) -> None:
    result = mint("code", 5001)
    codes = _values(result)
    assert len(codes) == len(set(codes)) == 5001
    assert "minted 5001/5001" in result.stderr
