"""One spelling per resource: an employee id is written in digits, an API version is a real
date. Lax parsing gave one employee many URLs (``/employees/1.0``) and accepted versions that
no calendar has (``2026-99-99``)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import EMPLOYEES, api_key, dashboard_api_key
from tests.conftest import World


@pytest.fixture
def key(client: TestClient, world: World) -> dict[str, str]:
    return api_key(dashboard_api_key(client, world.admin))


@pytest.mark.parametrize(
    "spelling", ["{id}.0", "{id}e0", "+{id}", "0{id}.00", "{id}_0", "0{id}", "\u0661"]
)
def test_an_employee_id_is_written_in_digits(
    client: TestClient, world: World, key: dict[str, str], spelling: str
) -> None:
    path = f"{EMPLOYEES}/{spelling.format(id=world.admin.id)}"
    for method in ("GET", "PUT"):
        response = client.request(method, path, headers=key, json={"first_name": "X"})
        assert response.status_code in (404, 422), (method, path, response.status_code)
        assert response.headers["content-type"].startswith("application/")
    assert client.get(f"{EMPLOYEES}/{world.admin.id}", headers=key).status_code == 200


def test_ids_in_filters_are_written_in_digits(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    response = client.get(EMPLOYEES, params={"ids[]": f"{world.admin.id}.0"}, headers=key)
    assert response.status_code == 422, response.text  # the API's validation problem


@pytest.mark.parametrize("version", ["2026-99-99", "2026-13-01", "2026-02-30", "2026-00-10"])
def test_a_version_that_is_no_date_is_not_a_path_of_the_api(
    client: TestClient, key: dict[str, str], version: str
) -> None:
    response = client.get(EMPLOYEES.replace("2026-10-01", version), headers=key)
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"
    leap = client.get(EMPLOYEES.replace("2026-10-01", "2028-02-29"), headers=key)
    assert leap.status_code == 200
