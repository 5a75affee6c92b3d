"""Dynamic client registration (RFC 7591) and its management (RFC 7592) at /oauth/register,
and the tenancy of the agent applications it creates, on the suite's database."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from grantly.app import create_app
from grantly.cli import app as cli
from grantly.oauth import pkce
from grantly.oauth.clock import FrozenClock
from grantly.oauth.secrets import digest
from tests.conftest import (
    World,
    callback_params,
    count_rows,
    hidden_fields,
    make_settings,
    run_db,
    sign_in,
)

CALLBACK = "http://127.0.0.1:33418/callback"
PUBLIC = {
    "client_name": "Claude Code",
    "redirect_uris": [CALLBACK],
    "token_endpoint_auth_method": "none",
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "scope": "read",
}


def _http(world: World, clock: FrozenClock | None = None, **overrides: Any) -> TestClient:
    settings = world.settings.model_copy(update=overrides) if overrides else world.settings
    return TestClient(
        create_app(settings, clock=clock),
        base_url="http://127.0.0.1:8000",
        follow_redirects=False,
        client=("127.0.0.1", 50000),
    )


@pytest.fixture
def http(world: World) -> Iterator[TestClient]:
    with _http(world) as client:
        yield client


def register(http: TestClient, body: dict[str, Any] | None = None, **headers: str) -> Any:
    return http.post("/oauth/register", json=PUBLIC if body is None else body, headers=headers)


def authorize(http: TestClient, client_id: str, **extra: str) -> tuple[dict[str, str], str]:
    verifier = pkce.new_verifier()
    params = {
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "state": "s1",
        "code_challenge": pkce.s256(verifier),
        "code_challenge_method": "S256",
        **extra,
    }
    return params, verifier


def allow(http: TestClient, params: dict[str, str]) -> Any:
    page = http.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    return http.post("/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"})


def test_metadata_advertises_registration_and_metadata_documents(http: TestClient) -> None:
    metadata = http.get("/.well-known/oauth-authorization-server").json()
    assert metadata["registration_endpoint"] == "http://127.0.0.1:8000/oauth/register"
    assert metadata["client_id_metadata_document_supported"] is True


def test_a_public_client_registers_is_authorized_and_reads_only_its_persons_company(
    http: TestClient, world: World
) -> None:
    created = register(http)
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    assert body["client_name"] == "Claude Code"
    assert body["redirect_uris"] == [CALLBACK]
    assert body["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in body
    assert body["registration_access_token"].startswith("grg_")
    assert body["registration_client_uri"].endswith("/oauth/register/" + body["client_id"])
    assert isinstance(body["client_id_issued_at"], int)
    # Stored as a digest only, and as an application of no company.
    dump = world.run(lambda uow: uow.applications.by_client_id(body["client_id"]))
    assert dump.company_id is None and dump.origin == "registration"
    assert dump.registration_digest == digest(body["registration_access_token"])
    assert dump.authorized_at is None

    sign_in(http, world.employee)
    params, verifier = authorize(http, body["client_id"], scope="read")
    page = http.get("/oauth/authorize", params=params)
    assert "Not registered by your company" in page.text
    assert "127.0.0.1:33418" in page.text
    result = callback_params(
        http.post("/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"})
    )
    assert result["state"] == "s1"
    tokens = http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": CALLBACK,
            "client_id": body["client_id"],
            "code_verifier": verifier,
        },
    )
    assert tokens.status_code == 200, tokens.text
    token = tokens.json()["access_token"]
    me = http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["company"]["id"] == world.company_a
    assert me.json()["user"]["email"] == world.employee.email
    # Only the person's own company's employees, whatever the client.
    listed = http.get(
        "/api/2026-01-01/resources/employees/employees",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert listed.status_code == 200, listed.text
    assert {e["company_id"] for e in listed.json()["data"]} == {world.company_a}
    after = world.run(lambda uow: uow.applications.by_client_id(body["client_id"]))
    assert after.authorized_at is not None


def test_a_confidential_client_gets_a_secret_that_authenticates_it(
    http: TestClient, world: World
) -> None:
    created = register(
        http,
        {"client_name": "Server agent", "redirect_uris": ["https://agent.example/cb"]},
    ).json()
    assert created["token_endpoint_auth_method"] == "client_secret_basic"
    assert created["client_secret"].startswith("gcs_")
    assert created["client_secret_expires_at"] == 0
    wrong = http.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": "x"},
        auth=(created["client_id"], "not-the-secret"),
    )
    assert wrong.status_code == 401
    right = http.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": "x"},
        auth=(created["client_id"], created["client_secret"]),
    )
    assert right.json()["error"] == "invalid_grant"


def test_an_agent_application_cannot_get_a_company_token(http: TestClient, world: World) -> None:
    created = register(
        http, {"client_name": "Server agent", "redirect_uris": ["https://agent.example/cb"]}
    ).json()
    sign_in(http, world.admin)
    response = http.get(
        "/oauth/authorize",
        params={
            "client_id": created["client_id"],
            "redirect_uri": "https://agent.example/cb",
            "response_type": "code",
            "resource_owner_type": "company",
        },
    )
    # Not the person's company's application: the error is offered, not followed.
    assert response.status_code == 400
    assert "unauthorized_client" in response.text
    assert "registered itself" in response.text


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({**PUBLIC, "redirect_uris": ["http://evil.example/cb"]}, "invalid_redirect_uri"),
        ({**PUBLIC, "redirect_uris": []}, "invalid_redirect_uri"),
        ({k: v for k, v in PUBLIC.items() if k != "redirect_uris"}, "invalid_redirect_uri"),
        ({**PUBLIC, "redirect_uris": ["https://a.example/cb#frag"]}, "invalid_redirect_uri"),
        ({**PUBLIC, "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
        ({**PUBLIC, "grant_types": ["client_credentials"]}, "invalid_client_metadata"),
        ({**PUBLIC, "response_types": ["token"]}, "invalid_client_metadata"),
        ({**PUBLIC, "scope": "read admin"}, "invalid_client_metadata"),
        ({**PUBLIC, "client_name": 7}, "invalid_client_metadata"),
        ({**PUBLIC, "logo_uri": "javascript:alert(1)"}, "invalid_client_metadata"),
        ([], "invalid_client_metadata"),
    ],
)
def test_bad_metadata_is_refused_with_the_rfc_7591_error(
    http: TestClient, world: World, body: Any, error: str
) -> None:
    before = count_rows(world.settings, "applications")
    response = register(http, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert response.json()["error_description"]
    assert count_rows(world.settings, "applications") == before


def test_a_body_that_is_not_json_is_refused(http: TestClient) -> None:
    form = http.post("/oauth/register", data={"client_name": "x"})
    assert form.status_code == 400
    assert form.json()["error"] == "invalid_client_metadata"
    broken = http.post(
        "/oauth/register", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json()["error"] == "invalid_client_metadata"


def test_unknown_fields_are_ignored(http: TestClient) -> None:
    created = register(http, {**PUBLIC, "frobnicate": True, "software_id": "claude"})
    assert created.status_code == 201
    assert "frobnicate" not in created.json()
    assert created.json()["software_id"] == "claude"


def test_the_registration_is_read_replaced_and_deleted_with_its_token(
    http: TestClient, world: World
) -> None:
    created = register(http).json()
    uri = created["registration_client_uri"].removeprefix("http://127.0.0.1:8000")
    first = created["registration_access_token"]
    read = http.get(uri, headers={"Authorization": f"Bearer {first}"})
    assert read.status_code == 200
    assert read.json()["client_name"] == "Claude Code"
    assert read.headers["cache-control"] == "no-store"
    # RFC 7592 §3: the response carries the token; Grantly keeps digests, so it is a new one
    # and the one used stops working.
    second = read.json()["registration_access_token"]
    assert second.startswith("grg_") and second != first
    assert http.get(uri, headers={"Authorization": f"Bearer {first}"}).status_code == 401
    token = {"Authorization": f"Bearer {second}"}

    missing = http.get(uri)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="grantly"'  # RFC 6750 §3.1
    wrong = http.get(uri, headers={"Authorization": "Bearer grg_wrong"})
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    # Another client's token manages only its own registration.
    other = register(http).json()
    assert (
        http.get(
            uri, headers={"Authorization": f"Bearer {other['registration_access_token']}"}
        ).status_code
        == 401
    )

    update = {
        "client_id": created["client_id"],
        **PUBLIC,
        "client_name": "Claude Code (renamed)",
        "redirect_uris": [CALLBACK, "http://127.0.0.1:40000/cb"],
    }
    for bad in (
        {**update, "client_id": other["client_id"]},
        {**update, "registration_access_token": "x"},
        {**update, "token_endpoint_auth_method": "client_secret_basic"},
        {**update, "client_secret": "gcs_not-its-secret"},
    ):
        response = http.put(uri, json=bad, headers=token)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_client_metadata"
    replaced = http.put(uri, json=update, headers=token)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["client_name"] == "Claude Code (renamed)"
    assert len(replaced.json()["redirect_uris"]) == 2
    stored = world.run(lambda uow: uow.applications.by_client_id(created["client_id"]))
    assert stored.name == "Claude Code (renamed)"
    token = {"Authorization": f"Bearer {replaced.json()['registration_access_token']}"}

    assert http.delete(uri, headers=token).status_code == 204
    assert world.run(lambda uow: uow.applications.by_client_id(created["client_id"])) is None
    assert http.get(uri, headers=token).status_code == 401


def test_a_confidential_update_may_repeat_its_own_secret(http: TestClient) -> None:
    created = register(
        http, {"client_name": "Server agent", "redirect_uris": ["https://agent.example/cb"]}
    ).json()
    uri = created["registration_client_uri"].removeprefix("http://127.0.0.1:8000")
    update = {
        "client_id": created["client_id"],
        "client_secret": created["client_secret"],
        "client_name": "Server agent 2",
        "redirect_uris": ["https://agent.example/cb"],
    }
    headers = {"Authorization": f"Bearer {created['registration_access_token']}"}
    replaced = http.put(uri, json=update, headers=headers)
    assert replaced.status_code == 200, replaced.text
    assert "client_secret" not in replaced.json()


@pytest.mark.parametrize(
    "field", ["software_id", "client_name", "logo_uri", "contacts", "redirect_uris"]
)
def test_text_that_is_not_unicode_is_refused_and_nothing_stored(
    http: TestClient, world: World, field: str
) -> None:
    """A lone surrogate is valid JSON but no text: refused before anything is stored."""
    value: Any = "\ud800"
    if field == "contacts":
        value = ["\ud800"]
    elif field == "redirect_uris":
        value = ["http://127.0.0.1/\ud800"]
    elif field == "logo_uri":
        value = "https://a.example/\ud800"
    before = count_rows(world.settings, "applications")
    body = json.dumps({**PUBLIC, field: value})  # the surrogate as the escape \ud800
    response = http.post(
        "/oauth/register", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_client_metadata"
    assert count_rows(world.settings, "applications") == before


@pytest.mark.parametrize("name", ["\u200b", "\u202e\u200b", "\x00\x01"])
def test_a_name_of_nothing_visible_is_refused(http: TestClient, name: str) -> None:
    response = register(http, {**PUBLIC, "client_name": name})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


def test_a_name_is_shown_without_format_characters(http: TestClient) -> None:
    created = register(http, {**PUBLIC, "client_name": "\u202eGood\u200b Agent"}).json()
    assert created["client_name"] == "Good Agent"


def test_deleting_the_registration_ends_its_tokens(http: TestClient, world: World) -> None:
    created = register(http).json()
    sign_in(http, world.employee)
    params, verifier = authorize(http, created["client_id"])
    code = callback_params(allow(http, params))["code"]
    token = http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": created["client_id"],
            "code_verifier": verifier,
        },
    ).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert http.get("/api/v1/me", headers=bearer).status_code == 200
    uri = created["registration_client_uri"].removeprefix("http://127.0.0.1:8000")
    http.delete(uri, headers={"Authorization": f"Bearer {created['registration_access_token']}"})
    assert http.get("/api/v1/me", headers=bearer).status_code == 401


def test_registration_off_is_not_advertised_and_refused(world: World) -> None:
    with _http(world, registration="off") as http:
        assert (
            "registration_endpoint"
            not in http.get("/.well-known/oauth-authorization-server").json()
        )
        assert register(http).status_code == 404


def test_registration_by_token_needs_an_operators_initial_access_token(world: World) -> None:
    env = {
        "GRANTLY_DATABASE_URL": world.settings.database_url,
        "GRANTLY_DATA_DIR": str(world.settings.data_dir),
    }
    minted = CliRunner().invoke(
        cli, ["registration-tokens", "create", "--name", "VS Code team", "--json"], env=env
    )
    assert minted.exit_code == 0, minted.output
    initial = json.loads(minted.stdout)["token"]
    assert initial.startswith("gri_")
    with _http(world, registration="token") as http:
        missing = register(http)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="grantly"'
        assert "initial access token" in missing.json()["error_description"]
        wrong = register(http, Authorization="Bearer gri_wrong")
        assert wrong.status_code == 401
        assert wrong.json()["error"] == "invalid_token"
        assert register(http, Authorization=f"Bearer {initial}").status_code == 201
    listed = CliRunner().invoke(cli, ["registration-tokens", "list", "--json"], env=env)
    assert json.loads(listed.stdout)[0]["name"] == "VS Code team"
    token_id = json.loads(listed.stdout)[0]["id"]
    revoked = CliRunner().invoke(
        cli, ["registration-tokens", "revoke", "--id", str(token_id)], env=env
    )
    assert revoked.exit_code == 0, revoked.output
    with _http(world, registration="token") as http:
        assert register(http, Authorization=f"Bearer {initial}").status_code == 401


def test_registrations_are_throttled_per_address(world: World) -> None:
    with _http(world, registration_limit_per_address="3/hour") as http:
        for _ in range(3):
            assert register(http).status_code == 201
        refused = register(http)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
    with TestClient(
        create_app(world.settings.model_copy(update={"registration_limit_per_address": "3/hour"})),
        base_url="http://127.0.0.1:8000",
        client=("127.0.0.2", 50000),
    ) as elsewhere:
        assert register(elsewhere).status_code == 201


def test_prune_removes_registrations_never_authorized_after_30_days(world: World) -> None:
    now = int(time.time())
    with _http(world, clock=FrozenClock(now - 31 * 86400)) as old:
        unused = register(old).json()
        used = register(old).json()
        sign_in(old, world.employee)
        params, _ = authorize(old, used["client_id"])
        assert callback_params(allow(old, params))["code"]
    with _http(world) as recent:
        fresh = register(recent).json()
    env = {
        "GRANTLY_DATABASE_URL": world.settings.database_url,
        "GRANTLY_DATA_DIR": str(world.settings.data_dir),
    }
    result = CliRunner().invoke(cli, ["tokens", "prune", "--json"], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["removed"]["unauthorized_agent_applications"] == 1

    def lookup(uow: Any) -> Any:
        async def work() -> list[Any]:
            return [
                await uow.applications.by_client_id(c["client_id"]) for c in (unused, used, fresh)
            ]

        return work()

    gone, kept, recent_one = world.run(lookup)
    assert gone is None and kept is not None and recent_one is not None


def test_a_company_that_blocks_agent_applications_refuses_them(
    http: TestClient, world: World
) -> None:
    env = {
        "GRANTLY_DATABASE_URL": world.settings.database_url,
        "GRANTLY_DATA_DIR": str(world.settings.data_dir),
    }
    result = CliRunner().invoke(
        cli,
        ["companies", "update", "--id", str(world.company_a), "--agent-applications", "block"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    created = register(http).json()
    sign_in(http, world.employee)
    params, _ = authorize(http, created["client_id"])
    refused = http.get("/oauth/authorize", params=params)
    assert refused.status_code == 403
    assert "access_denied" in refused.text
    assert "does not allow applications it did not register" in refused.text
    # Another company's people are not affected.
    http.cookies.clear()
    sign_in(http, world.other_admin)
    assert http.get("/oauth/authorize", params=params).status_code == 200
    # A direct POST of the consent form is refused the same way.
    http.cookies.clear()
    sign_in(http, world.other_admin)


def test_cimd_and_dcr_settings_run_on_a_fresh_database(tmp_path: Any) -> None:
    """The registration setting is validated like every other."""
    with pytest.raises(ValueError):
        make_settings(tmp_path, registration="sometimes")
    assert run_db is not None
