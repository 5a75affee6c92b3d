"""Public applications always ask for consent (RFC 8252 §8.6): any program on a device can
present a public client's id, a loopback redirect and its own PKCE challenge, so approving
without asking ("remember", "trusted") would hand it a code. Registration refuses those modes
for public applications (core, dashboard, CLI); a row that still has one (made before, or
edited in the database) is asked about anyway; migration 0005 resets such rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import make_url

from grantly import admin
from grantly.oauth.pkce import new_verifier, s256
from grantly.oauth.registration import RegistrationError, validate
from grantly.store import tables as t
from grantly.store.migrate import alembic_config
from tests.conftest import (
    ON_POSTGRESQL,
    World,
    _pg_admin,
    consent,
    drop_world,
    make_settings,
    run_sql,
    sign_in,
)

LOOPBACK = "http://127.0.0.1/cb"


@pytest.mark.parametrize("mode", ["remember", "trusted"])
def test_registration_refuses_automatic_approval_for_a_public_application(mode: str) -> None:
    with pytest.raises(RegistrationError) as refused:
        validate(
            name="CLI tool",
            redirect_uris=[LOOPBACK],
            confidential=False,
            scopes=["read"],
            server_scopes=("read", "write"),
            consent=mode,
        )
    assert any("RFC 8252" in problem for problem in refused.value.problems)
    # A confidential application may.
    validate(
        name="In-house",
        redirect_uris=["https://in-house.example/cb"],
        confidential=True,
        scopes=["read"],
        server_scopes=("read", "write"),
        consent=mode,
    )


@pytest.mark.parametrize("mode", ["remember", "trusted"])
def test_a_public_row_with_automatic_approval_still_asks(
    client: TestClient, world: World, mode: str
) -> None:
    """The reproduction: a public application set to trust (in the database, as rows made
    before the rule were), a program claiming its id with a loopback redirect and its own PKCE
    challenge. The person is asked, every time."""

    async def work(uow):
        draft = validate(
            name="Desktop",
            redirect_uris=[LOOPBACK],
            confidential=False,
            scopes=["read"],
            server_scopes=("read", "write"),
        )
        created = await admin.create_application(uow, world.company_a, draft, 0)
        await uow.tx.execute(
            update(t.applications)
            .where(t.applications.c.id == created.application.id)
            .values(consent=mode)
        )
        return created.application.client_id

    client_id = world.run(work)
    sign_in(client, world.employee)
    params = {
        "client_id": client_id,
        "redirect_uri": LOOPBACK,
        "response_type": "code",
        "scope": "read",
        "state": "s",
        "code_challenge": s256(new_verifier()),
        "code_challenge_method": "S256",
    }
    consent(client, params)  # a grant the person made once
    again = client.get("/oauth/authorize", params=params)
    assert again.status_code == 200, again.headers.get("location")
    assert "location" not in again.headers
    assert "Allow" in again.text or "allow" in again.text


def test_the_dashboard_refuses_trusted_for_a_public_application(
    client: TestClient, world: World
) -> None:
    from tests.conftest import csrf_of

    sign_in(client, world.admin)
    form = client.get("/oauth/applications/new")
    response = client.post(
        "/oauth/applications",
        data={
            "csrf_token": csrf_of(form.text),
            "name": "Desktop",
            "redirect_uris": LOOPBACK,
            "scopes": "read",
            "consent": "trusted",
        },
    )
    assert response.status_code in (400, 422), response.status_code
    assert "RFC 8252" in response.text


def test_the_cli_refuses_trusted_for_a_public_application(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from grantly.cli import app

    env = {
        "GRANTLY_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "GRANTLY_DATA_DIR": str(tmp_path / "data"),
    }
    runner = CliRunner()
    company = runner.invoke(app, ["companies", "create", "--name", "Acme", "--json"], env=env)
    assert company.exit_code == 0, company.output
    result = runner.invoke(
        app,
        [
            "apps",
            "create",
            "--company",
            "1",
            "--name",
            "CLI",
            "--redirect-uri",
            LOOPBACK,
            "--public",
            "--consent",
            "remember",
            "--json",
        ],
        env=env,
    )
    assert result.exit_code == 2, result.output
    assert "RFC 8252" in result.output


@pytest.fixture
def database_at_0004(tmp_path: Path) -> Iterator[str]:
    settings = make_settings(tmp_path)
    if ON_POSTGRESQL:
        _pg_admin(f'CREATE DATABASE "{make_url(settings.database_url).database}"')
    try:
        command.upgrade(alembic_config(settings.async_database_url), "0004")
        yield settings.async_database_url
    finally:
        drop_world(settings)


def test_migration_0005_sets_public_applications_to_always(database_at_0004: str) -> None:
    rows = [
        (1, "true", "trusted"),
        (2, "false", "trusted"),
        (3, "false", "remember"),
        (4, "false", "always"),
        (5, "true", "remember"),
    ]
    run_sql(
        database_at_0004,
        [
            "INSERT INTO companies (id, name, created_at) VALUES (1, 'Acme', 0)",
            *(
                "INSERT INTO applications (id, company_id, name, client_id, confidential, "
                f"redirect_uris, scopes, created_at, updated_at, consent) VALUES ({i}, 1, 'A{i}', "
                f"'cid{i}', {confidential}, 'https://a.example', 'read', 0, 0, '{mode}')"
                for i, confidential, mode in rows
            ),
        ],
    )
    command.upgrade(alembic_config(database_at_0004), "head")
    (after,) = run_sql(database_at_0004, ["SELECT id, consent FROM applications ORDER BY id"])
    assert after == [(1, "trusted"), (2, "always"), (3, "always"), (4, "always"), (5, "remember")]
