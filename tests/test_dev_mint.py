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


def test_batched_rows_are_the_repositories_rows(world: World) -> None:
    """The batched stores insert, column for column, what the repositories insert."""
    from sqlalchemy import select

    from grantly import dev_mint
    from grantly.oauth.models import NewAuthorizationCode, NewTokens, ResourceOwner
    from grantly.store import tables as t
    from grantly.store.repositories import AuthorizationCodes, Tokens

    owner = ResourceOwner("user", world.company_a, world.employee.id)

    def code(digest: str) -> NewAuthorizationCode:
        return NewAuthorizationCode(
            digest=digest,
            application_id=world.app.id,
            owner=owner,
            redirect_uri=REDIRECT_URI,
            redirect_uri_in_request=True,
            scopes=("read", "write"),
            code_challenge="c" * 43,
            code_challenge_method="S256",
            created_at=1_800_000_000,
            expires_at=1_800_000_600,
        )

    def tokens(suffix: str, family_id: int) -> NewTokens:
        return NewTokens(
            application_id=world.app.id,
            owner=owner,
            scopes=("read",),
            created_at=1_800_000_000,
            access_digest="access-" + suffix,
            access_expires_at=1_800_003_600,
            refresh_digest="refresh-" + suffix,
            refresh_expires_at=1_800_600_000,
            family_id=family_id,
            refresh_scopes=("read", "write"),
        )

    async def work(connection):
        await AuthorizationCodes(connection).save(code("by-repository"))
        pending = dev_mint._Rows()
        await dev_mint._BatchedCodes(connection, pending).save(code("batched"))
        await pending.flush(connection)
        codes = {
            row.digest: row
            for row in await connection.execute(select(t.authorization_codes))
            if row.digest in ("by-repository", "batched")
        }
        family = codes["by-repository"].id
        await Tokens(connection).issue(tokens("by-repository", family))
        await dev_mint._BatchedTokens(connection, pending).issue(tokens("batched", family))
        await pending.flush(connection)
        found = [codes]
        for table in (t.access_tokens, t.refresh_tokens):
            rows = {row.digest: row for row in await connection.execute(select(table))}
            found.append(
                {k.split("-", 1)[1]: v for k, v in rows.items() if k.endswith(("repository", "batched"))}
            )
        return found

    for rows in world.run(work):
        by_repository, batched = rows["by-repository"]._asdict(), rows["batched"]._asdict()
        for key in ("id", "digest"):
            by_repository.pop(key), batched.pop(key)
        assert batched == by_repository
