"""API keys: created and revoked by admins on /api_keys or with ``grantly api-keys``; the key
is shown once and only its SHA-256 digest is kept (RFC 9700 §4.14, as for every secret)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from grantly.cli import app as cli
from tests.api.conftest import CREDENTIALS, EMPLOYEES, api_key, dashboard_api_key
from tests.conftest import ON_POSTGRESQL, World, csrf_of, dump_database, sign_in


def _revoke_first_key(client: TestClient) -> None:
    page = client.get("/api_keys")
    key_id = re.search(r'action="/api_keys/(\d+)/revoke"', page.text).group(1)  # type: ignore[union-attr]
    response = client.post(
        f"/api_keys/{key_id}/revoke",
        data={"csrf_token": csrf_of(page.text), "confirmed": "yes"},
    )
    assert response.status_code == 303


def test_a_key_made_on_the_dashboard_opens_the_api(client: TestClient, world: World) -> None:
    key = dashboard_api_key(client, world.admin)
    assert key.startswith("gak_")
    assert client.get(EMPLOYEES, headers=api_key(key)).status_code == 200


def test_the_list_shows_the_name_and_hint_never_the_key(client: TestClient, world: World) -> None:
    key = dashboard_api_key(client, world.admin, name="Payroll sync")
    sign_in(client, world.admin)
    page = client.get("/api_keys").text
    assert "Payroll sync" in page and key[:8] in page
    assert key not in page and "Revoke" in page


def test_only_the_digest_of_a_key_is_stored(client: TestClient, world: World) -> None:
    key = dashboard_api_key(client, world.admin)
    dump = dump_database(world.settings)
    assert key not in dump and key[8:] not in dump
    assert hashlib.sha256(key.encode()).hexdigest() in dump


def test_reloading_the_creation_does_not_make_a_second_key(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    page = client.get("/api_keys")
    form = {"csrf_token": csrf_of(page.text), "form_id": "one-form", "name": "Once"}
    assert client.post("/api_keys", data=form).status_code == 201
    again = client.post("/api_keys", data=form)
    assert again.status_code == 303 and again.headers["location"] == "/api_keys"
    assert client.get("/api_keys").text.count("<td>Once</td>") == 1


def test_the_page_showing_a_key_is_not_cached(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    page = client.get("/api_keys")
    created = client.post("/api_keys", data={"csrf_token": csrf_of(page.text), "name": "K"})
    assert created.headers["cache-control"] == "no-store"


def test_creating_a_key_without_the_csrf_token_is_refused(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    response = client.post("/api_keys", data={"name": "Forged"})
    assert response.status_code == 403
    assert "Forged" not in client.get("/api_keys").text


def test_a_key_needs_a_name(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    page = client.get("/api_keys")
    response = client.post("/api_keys", data={"csrf_token": csrf_of(page.text), "name": "  "})
    assert response.status_code == 422
    assert "give the API key a name" in response.text


def test_employees_who_are_not_admins_cannot_manage_keys(client: TestClient, world: World) -> None:
    sign_in(client, world.employee)
    assert client.get("/api_keys").status_code == 403
    assert 'href="/api_keys"' not in client.get("/").text


def test_admins_find_api_keys_in_the_navigation(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    assert 'href="/api_keys"' in client.get("/").text


def test_signed_out_visitors_are_sent_to_sign_in(client: TestClient, world: World) -> None:
    response = client.get("/api_keys")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fapi_keys"


def test_a_revoked_key_stops_at_once(client: TestClient, world: World) -> None:
    key = dashboard_api_key(client, world.admin)
    sign_in(client, world.admin)
    _revoke_first_key(client)
    response = client.get(CREDENTIALS, headers=api_key(key))
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"
    assert "Revoked" in client.get("/api_keys").text


def test_another_company_s_key_cannot_be_revoked(client: TestClient, world: World) -> None:
    key = dashboard_api_key(client, world.admin)
    sign_in(client, world.other_admin)
    page = client.get("/api_keys")
    response = client.post("/api_keys/1/revoke", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 404
    assert client.get(CREDENTIALS, headers=api_key(key)).status_code == 200


# --- the command line ----------------------------------------------------------------------


@pytest.fixture
def grantly(tmp_path: Path):
    if ON_POSTGRESQL:
        pytest.skip("the CLI tests use their own SQLite file")
    runner = CliRunner()
    env = {
        "GRANTLY_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "GRANTLY_DATA_DIR": str(tmp_path / "data"),
    }

    def run(*args: str, code: int = 0) -> dict:
        result = runner.invoke(cli, [*args, "--json"], env=env)
        assert result.exit_code == code, result.output
        return json.loads(result.stdout.strip().splitlines()[-1])

    return run


def test_the_cli_creates_a_key_printed_once_and_revokes_it(grantly) -> None:
    company = grantly("companies", "create", "--name", "Acme")
    created = grantly("api-keys", "create", "--company", str(company["id"]), "--name", "ETL")
    assert created["key"].startswith("gak_") and created["name"] == "ETL"
    assert created["hint"] == created["key"][:8]
    listed = grantly("api-keys", "list", "--company", str(company["id"]))["api_keys"]
    assert [k["name"] for k in listed] == ["ETL"] and "key" not in listed[0]
    revoked = grantly("api-keys", "revoke", "--id", str(created["id"]))
    assert revoked["revoked_at"] is not None


def test_the_cli_refuses_a_key_for_a_company_that_does_not_exist(grantly) -> None:
    assert (
        "no company 42"
        in grantly("api-keys", "create", "--company", "42", "--name", "X", code=1)["error"]
    )


def test_the_cli_refuses_to_revoke_an_unknown_key(grantly) -> None:
    assert "no API key 7" in grantly("api-keys", "revoke", "--id", "7", code=1)["error"]
