"""The employees resource, in the shapes both Factorial SDKs parse (docs/factorial-api.md §4-§5)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from grantly.oauth.clock import FrozenClock
from grantly.store.audit import AuditQuery
from tests.api.conftest import (
    EMPLOYEES,
    Target,
    api_key,
    bearer,
    company_token,
    create_employee,
    dashboard_api_key,
    token_response,
    user_token,
)
from tests.conftest import World, csrf_of, sign_in

REQUIRED = (
    "id",
    "access_id",
    "first_name",
    "last_name",
    "full_name",
    "company_id",
    "location_id",
    "created_at",
    "updated_at",
    "is_terminating",
    "attendable",
)
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture
def key(client: TestClient, world: World) -> dict[str, str]:
    return api_key(dashboard_api_key(client, world.admin))


def _get(client: TestClient, headers: dict[str, str], employee_id: int) -> dict:
    response = client.get(f"{EMPLOYEES}/{employee_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_eleven_keys_both_sdks_require_are_present_and_not_null(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    for employee in client.get(EMPLOYEES, headers=key).json()["data"]:
        for name in REQUIRED:
            assert employee.get(name) is not None, name
        assert isinstance(employee["id"], int) and employee["access_id"] == employee["id"]
        assert ISO_UTC.match(employee["created_at"]) and ISO_UTC.match(employee["updated_at"])


def test_people_created_with_only_a_name_get_first_and_last_names_from_it(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    """``Accounts.create_user`` (the CLI, the demo) knows only a name: "admin" here."""
    admin = _get(client, key, world.admin.id)
    assert (admin["first_name"], admin["last_name"], admin["full_name"]) == ("admin", "", "admin")
    assert admin["role"] == "admin" and admin["email"] == world.admin.email


def test_any_dated_version_is_served_the_same_way(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    paths = [EMPLOYEES.replace("2026-10-01", v) for v in ("2026-04-01", "2025-07-01", "2031-01-01")]
    bodies = [client.get(path, headers=key).json() for path in paths]
    assert bodies[0] == bodies[1] == bodies[2]


def test_a_version_that_is_not_a_date_is_not_a_path_of_the_api(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    for version in ("v1", "2026-4-1", "latest"):
        response = client.get(f"/api/{version}/resources/employees/employees", headers=key)
        assert response.status_code == 404


def test_responses_with_personal_data_are_not_cached(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    assert client.get(EMPLOYEES, headers=key).headers["cache-control"] == "no-store"


def test_an_employee_sees_their_own_sensitive_fields(client: TestClient, world: World) -> None:
    token = company_token(client, world.admin, world.app)
    client.put(
        f"{EMPLOYEES}/{world.employee.id}",
        headers=bearer(token),
        json={"bank_number": "GB33BUKB20201555555555", "salary_cents": 100},
    )
    own = _get(client, bearer(user_token(client, world.employee, world.app)), world.employee.id)
    assert own["bank_number"] == "GB33BUKB20201555555555" and own["salary_cents"] == 100


def test_a_non_numeric_or_huge_id_is_not_found(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    for employee_id in ("abc", "0", str(2**31), str(10**40)):
        response = client.get(f"{EMPLOYEES}/{employee_id}", headers=key)
        assert response.status_code == 404, employee_id
        assert response.json()["error"] == "not_found"


def test_create_with_contract_answers_200_with_the_new_employee(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    response = client.post(
        f"{EMPLOYEES}/create_with_contract",
        headers=key,
        json={
            "company_id": str(world.company_a),  # the official SDK sends ids as strings
            "first_name": "Nuria",
            "last_name": "Nueva Vidal",
            "email": "Nuria@Acme.example",
            "manager_id": world.admin.id,
            "contract_starts_on": "2030-01-01",  # a contract field: accepted, ignored
            "bank_number": "ES7620770024003102575766",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["full_name"] == "Nuria Nueva Vidal" and body["email"] == "nuria@acme.example"
    assert body["manager_id"] == world.admin.id and body["location_id"] == 1
    assert body["active"] is True and body["bank_number"] == "ES7620770024003102575766"
    assert _get(client, key, body["id"]) == body


def test_an_employee_created_through_the_api_cannot_sign_in(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    """No password was ever set: the stored hash is of a random secret no one knows, so
    nothing typed verifies (not even the empty string)."""
    client.post(
        f"{EMPLOYEES}/create_with_contract",
        headers=key,
        json={
            "company_id": world.company_a,
            "first_name": "Pat",
            "last_name": "Nopass",
            "email": "pat@acme.example",
        },
    )
    client.cookies.clear()
    for password in ("", "grantly-dummy-password", "anything at all"):
        page = client.get("/login")
        response = client.post(
            "/login",
            data={
                "email": "pat@acme.example",
                "password": password,
                "csrf_token": csrf_of(page.text),
                "next": "/",
            },
        )
        assert response.status_code == 401


def test_an_email_already_in_use_is_a_conflict(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    response = client.post(
        f"{EMPLOYEES}/create_with_contract",
        headers=key,
        json={
            "company_id": world.company_a,
            "first_name": "Dup",
            "last_name": "Licate",
            "email": world.employee.email.upper(),
        },
    )
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"


def test_an_update_changes_only_the_keys_sent_and_keeps_the_full_name_consistent(
    client: TestClient, world: World, target: Target, key: dict[str, str], clock: FrozenClock
) -> None:
    before = _get(client, key, target.id)
    clock.advance(60)
    response = client.put(f"{EMPLOYEES}/{target.id}", headers=key, json={"last_name": "Tercera"})
    after = response.json()
    assert after["full_name"] == "Tara Tercera" and after["first_name"] == "Tara"
    assert after["bank_number"] == before["bank_number"]
    assert after["created_at"] == before["created_at"]
    stamp = dt.datetime.fromtimestamp(clock.now(), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert after["updated_at"] == stamp != before["updated_at"]

    async def stored_name(connection):
        return (await connection.people.get(world.company_a, target.id)).full_name

    assert world.run(stored_name) == "Tara Tercera"  # users.name follows


def test_an_update_with_the_official_sdk_s_string_id_in_the_body_is_accepted(
    client: TestClient, world: World, target: Target, key: dict[str, str]
) -> None:
    response = client.put(
        f"{EMPLOYEES}/{target.id}", headers=key, json={"id": str(target.id), "first_name": "Tea"}
    )
    assert response.status_code == 200 and response.json()["first_name"] == "Tea"


def test_an_update_whose_body_id_differs_from_the_path_is_refused(
    client: TestClient, world: World, target: Target, key: dict[str, str]
) -> None:
    response = client.put(
        f"{EMPLOYEES}/{target.id}", headers=key, json={"id": world.admin.id, "first_name": "X"}
    )
    assert response.status_code == 422
    assert _get(client, key, target.id)["first_name"] == "Tara"


def test_null_clears_an_optional_field_but_not_a_required_one(
    client: TestClient, world: World, target: Target, key: dict[str, str]
) -> None:
    cleared = client.put(f"{EMPLOYEES}/{target.id}", headers=key, json={"bank_number": None})
    assert cleared.json()["bank_number"] is None
    refused = client.put(f"{EMPLOYEES}/{target.id}", headers=key, json={"first_name": None})
    assert refused.status_code == 422


def test_a_bank_number_format_outside_factorials_list_is_refused(
    client: TestClient, world: World, target: Target, key: dict[str, str]
) -> None:
    """Any other value breaks both SDKs' enum parsing (docs/factorial-api.md §4.4)."""
    response = client.put(
        f"{EMPLOYEES}/{target.id}", headers=key, json={"bank_number_format": "swift"}
    )
    assert response.status_code == 422


def test_control_characters_in_names_are_refused(
    client: TestClient, world: World, target: Target, key: dict[str, str]
) -> None:
    for name in ("Ta\x00ra", "Ta\nra", "   "):
        response = client.put(f"{EMPLOYEES}/{target.id}", headers=key, json={"first_name": name})
        assert response.status_code == 422, repr(name)


def test_a_manager_loop_is_refused(
    client: TestClient, world: World, target: Target, key: dict[str, str]
) -> None:
    assert (
        client.put(
            f"{EMPLOYEES}/{target.id}", headers=key, json={"manager_id": world.employee.id}
        ).status_code
        == 200
    )
    loop = client.put(
        f"{EMPLOYEES}/{world.employee.id}", headers=key, json={"manager_id": target.id}
    )
    assert loop.status_code == 422
    itself = client.put(f"{EMPLOYEES}/{target.id}", headers=key, json={"manager_id": target.id})
    assert itself.status_code == 422


def test_terminating_stops_the_employee_s_user_tokens_at_once(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    token = user_token(client, world.employee, world.app)
    assert client.get(EMPLOYEES, headers=bearer(token)).status_code == 200
    response = client.post(
        f"{EMPLOYEES}/terminate",
        headers=key,
        json={
            "id": str(world.employee.id),
            "terminated_on": "2020-01-31",
            "termination_reason": "x",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["active"] is False and body["terminated_on"] == "2020-01-31"
    assert body["is_terminating"] is False  # the date is past
    after = client.get(EMPLOYEES, headers=bearer(token))
    assert after.status_code == 401 and after.json()["error"] == "invalid_token"


def test_a_termination_dated_in_the_future_is_terminating(
    client: TestClient, world: World, target: Target, key: dict[str, str]
) -> None:
    body = client.post(
        f"{EMPLOYEES}/terminate", headers=key, json={"id": target.id, "terminated_on": "2999-01-01"}
    ).json()
    assert body["is_terminating"] is True and body["active"] is False


def test_terminating_an_admin_keeps_the_company_tokens_they_authorized(
    client: TestClient, world: World
) -> None:
    token = company_token(client, world.admin, world.app)
    response = client.post(
        f"{EMPLOYEES}/terminate",
        headers=bearer(token),
        json={"id": world.admin.id, "terminated_on": "2020-01-31"},
    )
    assert response.status_code == 200
    assert client.get(EMPLOYEES, headers=bearer(token)).status_code == 200


def test_unterminating_does_not_revive_old_tokens(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    tokens = token_response(client, world.employee, world.app)
    client.post(
        f"{EMPLOYEES}/terminate",
        headers=key,
        json={"id": world.employee.id, "terminated_on": "2020-01-31"},
    )
    restored = client.post(f"{EMPLOYEES}/unterminate", headers=key, json={"id": world.employee.id})
    assert restored.status_code == 200
    assert restored.json()["active"] is True and restored.json()["terminated_on"] is None
    assert client.get(EMPLOYEES, headers=bearer(tokens["access_token"])).status_code == 401
    refresh = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(world.app.client_id, world.app.client_secret or ""),
    )
    assert refresh.status_code == 400
    fresh = user_token(client, world.employee, world.app)  # authorizing again works
    assert client.get(EMPLOYEES, headers=bearer(fresh)).status_code == 200


def test_terminating_ends_the_employee_s_sign_in_sessions(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    client.cookies.clear()
    sign_in(client, world.employee)
    assert client.get("/").status_code == 200
    client.post(
        f"{EMPLOYEES}/terminate",
        headers=key,
        json={"id": world.employee.id, "terminated_on": "2020-01-31"},
    )
    assert client.get("/").status_code == 303  # back to sign-in


def test_a_failed_change_leaves_nothing_behind(
    client: TestClient, world: World, target: Target, key: dict[str, str]
) -> None:
    other = create_employee(world, world.company_a, "olga@acme.example", first_name="Olga")
    response = client.put(
        f"{EMPLOYEES}/{other.id}",
        headers=key,
        json={"first_name": "Changed", "manager_id": other.id},  # a loop: refused
    )
    assert response.status_code == 422
    assert _get(client, key, other.id)["first_name"] == "Olga"


def test_terminating_and_unterminating_are_in_the_audit_trail(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    """As a deactivation on the dashboard is: who, by which credential; once per change."""
    for _ in range(2):  # terminating an already terminated person changes nothing
        client.post(
            f"{EMPLOYEES}/terminate",
            headers=key,
            json={"id": world.employee.id, "terminated_on": "2020-01-31"},
        )
    client.post(f"{EMPLOYEES}/unterminate", headers=key, json={"id": world.employee.id})

    async def work(uow: Any) -> list[Any]:
        found = await uow.audit.batch(world.company_a, AuditQuery(event="user.*"), None, 100)
        return [(e.event, e.detail) for e in reversed(found)]

    events = world.run(work)
    assert [event for event, _ in events] == ["user.deactivated", "user.activated"]
    for _, detail in events:
        assert detail["user_id"] == world.employee.id and detail["via"] == "api"
        assert detail["credential"].startswith("api_key_")
