"""factorial-api-client 3.0.0 (the official SDK, attrs, sync) against a live Grantly: it
accepts only status 200, pops required keys without defaults, and follows ``after_id``
cursors (docs/factorial-api.md §1.2, §4, §6.2)."""

from __future__ import annotations

import pytest
from factorial_api_client import FactorialClient
from factorial_api_client.generated.errors import UnexpectedStatus
from factorial_api_client.generated.models.post_api_20261001_resources_employees_employees_create_with_contract_body import (
    PostApi20261001ResourcesEmployeesEmployeesCreateWithContractBody as CreateBody,
)
from factorial_api_client.generated.models.post_api_20261001_resources_employees_employees_terminate_body import (
    PostApi20261001ResourcesEmployeesEmployeesTerminateBody as TerminateBody,
)
from factorial_api_client.generated.models.put_api_20261001_resources_employees_employees_id_body import (
    PutApi20261001ResourcesEmployeesEmployeesIdBody as UpdateBody,
)

from tests.sdk.conftest import CREDENTIAL_KINDS, SdkWorld

pytestmark = pytest.mark.live


def _client(sdk: SdkWorld, kind: str) -> FactorialClient:
    credential = sdk.credential(kind)
    if kind == "API key":
        return FactorialClient(base_url=sdk.url, api_key=credential)
    return FactorialClient(base_url=sdk.url, token=credential)


@pytest.mark.parametrize("kind", CREDENTIAL_KINDS)
def test_the_official_sdk_lists_employees_and_reads_its_credential(
    sdk: SdkWorld, kind: str
) -> None:
    client = _client(sdk, kind)
    first = client.employees.employees.list()
    assert first.meta.total == len(sdk.company_a_ids) and first.meta.has_next_page is False
    assert [int(e.id) for e in first.data] == sdk.company_a_ids
    credential = client.api_public.credentials.list().data[0]
    assert int(credential.company_id) == sdk.live.world.company_a
    if kind == "user token":
        assert credential.employee_id == sdk.live.world.employee.id
        assert credential.role == "employee"
    else:
        assert credential.employee_id is None


def test_the_official_sdk_follows_cursors_through_small_pages(sdk: SdkWorld) -> None:
    client = _client(sdk, "user token")
    everyone = client.employees.employees.all(limit=2)
    assert [int(e.id) for e in everyone] == sdk.company_a_ids


def test_the_official_sdk_filters_by_ids_and_activity(sdk: SdkWorld) -> None:
    client = _client(sdk, "company token")
    wanted = [str(i) for i in sdk.company_a_ids[2:4]]
    page = client.employees.employees.list(ids=wanted, only_active=True)
    assert [e.id for e in page.data] == [int(i) for i in wanted]


def test_the_official_sdk_creates_updates_and_terminates_an_employee(sdk: SdkWorld) -> None:
    employees = _client(sdk, "API key").employees.employees
    created = employees.create_with_contract(
        body=CreateBody(
            company_id=str(sdk.live.world.company_a),
            first_name="Olivia",
            last_name="Oficial",
            email="olivia@acme.example",
        )
    )
    assert created.full_name == "Olivia Oficial"
    updated = employees.update(created.id, body=UpdateBody(id=str(created.id), first_name="Liv"))
    assert updated.full_name == "Liv Oficial"
    terminated = employees.terminate(
        body=TerminateBody(id=str(created.id), terminated_on="2025-12-31")
    )
    assert terminated.terminated_on == "2025-12-31" and terminated.active is False
    assert employees.get(created.id).terminated_on == "2025-12-31"


def test_the_official_sdk_raises_on_another_company_s_employee(sdk: SdkWorld) -> None:
    world = sdk.live.world
    with pytest.raises(UnexpectedStatus) as raised:
        _client(sdk, "API key").employees.employees.get(world.other_admin.id)
    assert raised.value.status_code == 404


def test_the_official_sdk_raises_when_an_employee_token_writes(sdk: SdkWorld) -> None:
    with pytest.raises(UnexpectedStatus) as raised:
        _client(sdk, "user token").employees.employees.update(
            sdk.company_a_ids[0], body=UpdateBody(id=str(sdk.company_a_ids[0]), first_name="X")
        )
    assert raised.value.status_code == 403
