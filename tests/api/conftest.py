"""Credentials for the resource API, obtained the way integrations obtain them: tokens through
sign-in, consent and the code exchange; API keys through the admins' dashboard."""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from grantly.oauth.clock import FrozenClock
from grantly.store.people import Employee
from tests.conftest import (
    Client,
    Person,
    World,
    authorize_params,
    callback_params,
    consent,
    csrf_of,
    exchange,
    hidden_fields,
    sign_in,
)

VERSION = "2026-10-01"
RESOURCES = f"/api/{VERSION}/resources"
EMPLOYEES = f"{RESOURCES}/employees/employees"
CREDENTIALS = f"{RESOURCES}/api_public/credentials"
TARGET_BANK_NUMBER = "ES9121000418450200051332"
TARGET_SALARY_CENTS = 4_200_000

_API_KEY = re.compile(r'<code id="api-key">([^<]+)</code>')


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_key(key: str) -> dict[str, str]:
    return {"x-api-key": key}


def token_response(
    http: TestClient | httpx.Client, person: Person, app: Client, **extra: str
) -> dict[str, Any]:
    """Sign in as ``person`` (in a fresh browser), allow ``app`` and exchange the code."""
    http.cookies.clear()
    sign_in(http, person)
    code = callback_params(consent(http, authorize_params(app, **extra)))["code"]
    response = exchange(http, app, code)
    assert response.status_code == 200, response.text
    http.cookies.clear()
    return dict(response.json())


def user_token(http: TestClient | httpx.Client, person: Person, app: Client, **extra: str) -> str:
    return str(token_response(http, person, app, **extra)["access_token"])


def company_token(http: TestClient | httpx.Client, admin: Person, app: Client, **extra: str) -> str:
    return user_token(http, admin, app, resource_owner_type="company", **extra)


def dashboard_api_key(
    http: TestClient | httpx.Client, admin: Person, name: str = "Payroll sync"
) -> str:
    """Create an API key on /api_keys as ``admin``; the page shows it once."""
    http.cookies.clear()
    sign_in(http, admin)
    page = http.get("/api_keys")
    assert page.status_code == 200, page.text
    created = http.post(
        "/api_keys",
        data={
            "csrf_token": csrf_of(page.text),
            "form_id": hidden_fields(page.text)["form_id"],
            "name": name,
        },
    )
    assert created.status_code == 201, created.text
    http.cookies.clear()
    match = _API_KEY.search(created.text)
    assert match, "the new API key is not on the page"
    return match.group(1)


def create_employee(
    world: World, company_id: int, email: str, now: int | None = None, **values: Any
) -> Employee:
    """An employee row straight in the database (test data, not a credential)."""
    first = values.pop("first_name", "Tara")
    last = values.pop("last_name", "Target")

    async def work(connection: Any) -> Employee:
        return await connection.people.create(
            company_id,
            email=email,
            first_name=first,
            last_name=last,
            values=values,
            now=now if now is not None else int(time.time()),
        )

    return world.run(work)  # type: ignore[no-any-return]


@dataclass
class Target:
    """A colleague in company A with sensitive fields set."""

    id: int
    email: str


@pytest.fixture
def target(world: World, clock: FrozenClock) -> Target:
    employee = create_employee(
        world,
        world.company_a,
        "tara@acme.example",
        now=clock.now(),
        bank_number=TARGET_BANK_NUMBER,
        bank_number_format="iban",
        salary_cents=TARGET_SALARY_CENTS,
        birthday_on=dt.date(1990, 5, 17),
    )
    return Target(employee.id, employee.email)
