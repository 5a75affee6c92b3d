"""Every kind of credential against every kind of request, with the exact answer expected.

Rules (Factorial's, docs/factorial-api.md and shared/factorial/FACTS.md): a user token acts as
its person (an admin sees everything in the company; an employee sees colleagues' directory
fields, and null for their sensitive ones); company tokens and API keys act for the company;
only admins' user tokens, company tokens and API keys change employees; nothing of another
company is visible. Bad credentials are RFC 6750 §3.1 ``invalid_token`` with a challenge.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from grantly.oauth.clock import FrozenClock
from tests.api.conftest import (
    CREDENTIALS,
    EMPLOYEES,
    TARGET_BANK_NUMBER,
    TARGET_SALARY_CENTS,
    Target,
    api_key,
    bearer,
    company_token,
    dashboard_api_key,
    user_token,
)
from tests.conftest import World

Headers = dict[str, str]


def _revoked(client: TestClient, world: World, clock: FrozenClock) -> Headers:
    token = user_token(client, world.admin, world.app)
    revoked = client.post(
        "/oauth/revoke",
        data={"token": token},
        auth=(world.app.client_id, world.app.client_secret or ""),
    )
    assert revoked.status_code == 200
    return bearer(token)


def _expired(client: TestClient, world: World, clock: FrozenClock) -> Headers:
    token = user_token(client, world.admin, world.app)
    clock.advance(3600)  # the default user-token lifetime: expired from this second on
    return bearer(token)


def _deactivated(client: TestClient, world: World, clock: FrozenClock) -> Headers:
    token = user_token(client, world.employee, world.app)
    world.run(lambda uow: uow.accounts.deactivate(world.employee.id, clock.now()))
    return bearer(token)


CREDENTIAL_MAKERS: dict[str, Callable[[TestClient, World, FrozenClock], Headers]] = {
    "admin user token": lambda c, w, _: bearer(user_token(c, w.admin, w.app)),
    "employee user token": lambda c, w, _: bearer(user_token(c, w.employee, w.app)),
    "company token": lambda c, w, _: bearer(company_token(c, w.admin, w.app)),
    "API key": lambda c, w, _: api_key(dashboard_api_key(c, w.admin)),
    "revoked token": _revoked,
    "expired token": _expired,
    "deactivated user's token": _deactivated,
    "other company's admin token": lambda c, w, _: bearer(
        user_token(c, w.other_admin, w.other_app)
    ),
}


def _request(
    client: TestClient, operation: str, headers: Headers, target: Target
) -> httpx.Response:
    if operation == "read the credential":
        return client.get(CREDENTIALS, headers=headers)
    if operation == "read /api/v1/me":
        return client.get("/api/v1/me", headers=headers)
    if operation == "list employees":
        return client.get(EMPLOYEES, headers=headers)
    if operation == "read a colleague's sensitive fields":
        return client.get(f"{EMPLOYEES}/{target.id}", headers=headers)
    assert operation == "change a colleague"
    return client.put(f"{EMPLOYEES}/{target.id}", headers=headers, json={"preferred_name": "Tee"})


OPERATIONS = [
    "read the credential",
    "read /api/v1/me",
    "list employees",
    "read a colleague's sensitive fields",
    "change a colleague",
]


# --- what each cell must answer ------------------------------------------------------------


def _invalid_token(response: httpx.Response, world: World, target: Target) -> None:
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "the access token is invalid, expired or revoked.",
    }
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.headers["cache-control"] == "no-store"


def _credential(prefix: str, employee: str | None) -> Callable[..., None]:
    def check(response: httpx.Response, world: World, target: Target) -> None:
        assert response.status_code == 200
        body = response.json()
        assert body["meta"] == {
            "limit": 100,
            "total": 1,
            "has_next_page": False,
            "has_previous_page": False,
            "start_cursor": "1",
            "end_cursor": "1",
        }
        (credential,) = body["data"]
        assert credential["id"].startswith(prefix)
        person = getattr(world, employee) if employee else None
        assert credential["company_id"] == (person.company_id if person else world.company_a)
        assert credential["employee_id"] == (person.id if person else None)
        if person:
            assert credential["email"] == person.email
            assert credential["role"] == ("admin" if person.admin else "employee")
        else:
            assert credential["name"] == "Acme"

    return check


def _me(owner_type: str, company: str) -> Callable[..., None]:
    def check(response: httpx.Response, world: World, target: Target) -> None:
        assert response.status_code == 200
        body = response.json()
        assert body["resource_owner_type"] == owner_type
        assert body["company"]["id"] == getattr(world, company)

    return check


def _lists(*people: str, sensitive_visible: bool) -> Callable[..., None]:
    def check(response: httpx.Response, world: World, target: Target) -> None:
        assert response.status_code == 200
        body = response.json()
        expected = sorted(target.id if p == "target" else getattr(world, p).id for p in people)
        assert [e["id"] for e in body["data"]] == expected
        assert body["meta"]["total"] == len(expected)
        for employee in body["data"]:
            if employee["id"] == target.id:
                visible = employee["bank_number"] == TARGET_BANK_NUMBER
                assert visible is sensitive_visible
                assert employee["full_name"] == "Tara Target"

    return check


def _sensitive(visible: bool) -> Callable[..., None]:
    def check(response: httpx.Response, world: World, target: Target) -> None:
        assert response.status_code == 200
        body = response.json()
        assert body["id"] == target.id and body["email"] == target.email
        assert body["first_name"] == "Tara"
        if visible:
            assert body["bank_number"] == TARGET_BANK_NUMBER
            assert body["bank_number_format"] == "iban"
            assert body["salary_cents"] == TARGET_SALARY_CENTS
            assert body["birthday_on"] == "1990-05-17"
        else:
            for key in ("bank_number", "bank_number_format", "salary_cents", "birthday_on"):
                assert key in body and body[key] is None

    return check


def _target_name(world: World, target: Target) -> str | None:
    async def work(connection: Any) -> str | None:
        employee = await connection.people.get(world.company_a, target.id)
        return employee.preferred_name if employee else None

    return world.run(work)  # type: ignore[no-any-return]


def _changed(response: httpx.Response, world: World, target: Target) -> None:
    assert response.status_code == 200
    assert response.json()["preferred_name"] == "Tee"
    assert _target_name(world, target) == "Tee"


def _refused(status: int, error: str) -> Callable[..., None]:
    def check(response: httpx.Response, world: World, target: Target) -> None:
        assert response.status_code == status
        assert response.json()["error"] == error
        assert "www-authenticate" not in response.headers  # not a credential problem
        assert _target_name(world, target) is None

    return check


def _unchanged_invalid_token(response: httpx.Response, world: World, target: Target) -> None:
    _invalid_token(response, world, target)
    assert _target_name(world, target) is None


FULL_LIST = ("admin", "employee", "target")
EXPECTED: dict[str, dict[str, Callable[..., None]]] = {
    "admin user token": {
        "read the credential": _credential("access_token_", "admin"),
        "read /api/v1/me": _me("user", "company_a"),
        "list employees": _lists(*FULL_LIST, sensitive_visible=True),
        "read a colleague's sensitive fields": _sensitive(visible=True),
        "change a colleague": _changed,
    },
    "employee user token": {
        "read the credential": _credential("access_token_", "employee"),
        "read /api/v1/me": _me("user", "company_a"),
        "list employees": _lists(*FULL_LIST, sensitive_visible=False),
        "read a colleague's sensitive fields": _sensitive(visible=False),
        "change a colleague": _refused(403, "access_denied"),
    },
    "company token": {
        "read the credential": _credential("company_token_", None),
        "read /api/v1/me": _me("company", "company_a"),
        "list employees": _lists(*FULL_LIST, sensitive_visible=True),
        "read a colleague's sensitive fields": _sensitive(visible=True),
        "change a colleague": _changed,
    },
    "API key": {
        "read the credential": _credential("api_key_", None),
        "read /api/v1/me": _me("company", "company_a"),
        "list employees": _lists(*FULL_LIST, sensitive_visible=True),
        "read a colleague's sensitive fields": _sensitive(visible=True),
        "change a colleague": _changed,
    },
    **{
        bad: {
            **{operation: _invalid_token for operation in OPERATIONS},
            "change a colleague": _unchanged_invalid_token,
        }
        for bad in ("revoked token", "expired token", "deactivated user's token")
    },
    "other company's admin token": {
        "read the credential": _credential("access_token_", "other_admin"),
        "read /api/v1/me": _me("user", "company_b"),
        "list employees": _lists("other_admin", sensitive_visible=False),
        "read a colleague's sensitive fields": _refused(404, "not_found"),
        "change a colleague": _refused(404, "not_found"),
    },
}


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("credential", list(CREDENTIAL_MAKERS))
def test_each_credential_gets_exactly_what_its_permissions_allow(
    client: TestClient,
    world: World,
    clock: FrozenClock,
    target: Target,
    credential: str,
    operation: str,
) -> None:
    headers = CREDENTIAL_MAKERS[credential](client, world, clock)
    response = _request(client, operation, headers, target)
    EXPECTED[credential][operation](response, world, target)
