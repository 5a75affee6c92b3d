"""Both of Factorial's ways to page, and its list filters (docs/factorial-api.md §4.2, §6):
offset pages for factorialhr (``page``, 1-based, fetched concurrently from ``total`` and
``limit``), cursors for factorial-api-client (``after_id`` = ``meta.end_cursor``)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import EMPLOYEES, api_key, create_employee, dashboard_api_key
from tests.conftest import World

EXTRA = 9  # with the admin and the employee: 11 people in company A


@pytest.fixture
def key(client: TestClient, world: World) -> dict[str, str]:
    for n in range(EXTRA):
        create_employee(
            world,
            world.company_a,
            f"person{n}@acme.example",
            first_name=f"Person{n}",
            last_name="Zeta" if n % 2 else "Alpha",
            location_id=7 if n < 3 else 1,
        )
    return api_key(dashboard_api_key(client, world.admin))


def _ids(client: TestClient, key: dict[str, str], **params: object) -> list[int]:
    return [e["id"] for e in client.get(EMPLOYEES, headers=key, params=params).json()["data"]]


def _all_ids(client: TestClient, key: dict[str, str]) -> list[int]:
    return _ids(client, key)


def test_offset_pages_cover_the_list_once_in_id_order(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    first = client.get(EMPLOYEES, headers=key, params={"page": 1, "limit": 4}).json()
    meta = first["meta"]
    assert (meta["limit"], meta["total"], meta["has_next_page"]) == (4, 11, True)
    assert meta["has_previous_page"] is False
    pages = [first["data"]] + [
        client.get(EMPLOYEES, headers=key, params={"page": n, "limit": 4}).json()["data"]
        for n in (2, 3)
    ]
    ids = [e["id"] for page in pages for e in page]
    assert ids == sorted(ids) == _all_ids(client, key)
    last = client.get(EMPLOYEES, headers=key, params={"page": 3, "limit": 4}).json()["meta"]
    assert last["has_next_page"] is False and last["has_previous_page"] is True


def test_a_page_past_the_end_is_empty(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    body = client.get(EMPLOYEES, headers=key, params={"page": 50}).json()
    assert body["data"] == [] and body["meta"]["total"] == 11
    assert body["meta"]["start_cursor"] is None and body["meta"]["end_cursor"] is None


def test_cursors_walk_the_whole_list_as_the_official_sdk_does(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    seen: list[int] = []
    params: dict[str, object] = {"limit": 3}
    for _ in range(10):
        body = client.get(EMPLOYEES, headers=key, params=params).json()
        seen += [e["id"] for e in body["data"]]
        if not body["meta"]["has_next_page"] or not body["meta"]["end_cursor"]:
            break
        params = {"limit": 3, "after_id": body["meta"]["end_cursor"]}
    assert seen == _all_ids(client, key)


def test_cursors_are_the_ids_of_the_first_and_last_items_as_strings(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    """Both SDKs treat cursors as opaque strings (factorialhr declares them ``str``)."""
    body = client.get(EMPLOYEES, headers=key, params={"limit": 2}).json()
    ids = [e["id"] for e in body["data"]]
    assert (body["meta"]["start_cursor"], body["meta"]["end_cursor"]) == (str(ids[0]), str(ids[1]))
    assert _ids(client, key, after_id=body["meta"]["end_cursor"])[0] > ids[1]


def test_after_a_cursor_there_is_a_previous_page(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    first_id = _all_ids(client, key)[0]
    meta = client.get(EMPLOYEES, headers=key, params={"after_id": first_id}).json()["meta"]
    assert meta["has_previous_page"] is True and meta["has_next_page"] is False


def test_before_id_pages_backwards(client: TestClient, world: World, key: dict[str, str]) -> None:
    everyone = _all_ids(client, key)
    body = client.get(EMPLOYEES, headers=key, params={"before_id": everyone[5], "limit": 2}).json()
    assert [e["id"] for e in body["data"]] == everyone[3:5]
    assert body["meta"]["has_previous_page"] is True and body["meta"]["has_next_page"] is True


def test_a_malformed_cursor_is_refused(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    for cursor in ("not a cursor", "-1", "MTc=", "1" * 21):
        response = client.get(EMPLOYEES, headers=key, params={"after_id": cursor})
        assert response.status_code == 422, cursor
        assert response.json()["error"] == "invalid_request"


def test_a_cursor_beyond_every_id_gives_an_empty_page(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    assert _ids(client, key, after_id=str(10**18)) == []  # past every 32-bit id


def test_the_page_size_is_capped_at_100(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    meta = client.get(EMPLOYEES, headers=key, params={"limit": 5000}).json()["meta"]
    assert meta["limit"] == 100


def test_a_limit_below_one_is_refused(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    assert client.get(EMPLOYEES, headers=key, params={"limit": 0}).status_code == 422


def test_ids_filter_keeps_only_those_ids(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    everyone = _all_ids(client, key)
    wanted = [everyone[1], everyone[4]]
    assert _ids(client, key, **{"ids[]": [str(i) for i in wanted]}) == wanted


def test_ids_and_access_ids_filters_intersect(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    everyone = _all_ids(client, key)
    assert _ids(client, key, **{"ids[]": everyone[0], "access_ids[]": everyone[1]}) == []


def test_emails_filter_ignores_case(client: TestClient, world: World, key: dict[str, str]) -> None:
    found = _ids(client, key, **{"emails[]": ["PERSON3@acme.example", world.employee.email]})
    assert len(found) == 2 and world.employee.id in found


def test_location_ids_filter(client: TestClient, world: World, key: dict[str, str]) -> None:
    body = client.get(EMPLOYEES, headers=key, params={"location_ids[]": 7}).json()
    assert body["meta"]["total"] == 3
    assert {e["location_id"] for e in body["data"]} == {7}


def test_only_active_leaves_out_terminated_employees(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    client.post(
        f"{EMPLOYEES}/terminate",
        headers=key,
        json={"id": world.employee.id, "terminated_on": "2020-01-01"},
    )
    assert world.employee.id in _all_ids(client, key)
    assert world.employee.id not in _ids(client, key, only_active="true")
    assert world.employee.id in _ids(client, key, only_active="false")


def test_only_managers_keeps_people_with_direct_reports(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    client.put(f"{EMPLOYEES}/{world.employee.id}", headers=key, json={"manager_id": world.admin.id})
    assert _ids(client, key, only_managers="true") == [world.admin.id]


def test_name_filters_match_without_regard_to_case(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    assert len(_ids(client, key, full_text_name="person")) == EXTRA
    assert len(_ids(client, key, name_starts_with="zeta")) == EXTRA // 2  # by last name
    assert len(_ids(client, key, full_text_name="%")) == 0  # a LIKE wildcard is plain text


def test_updated_at_gteq_compares_days(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    assert len(_ids(client, key, updated_at_gteq="2000-01-01")) == 11
    assert _ids(client, key, updated_at_gteq="2999-01-01") == []


def test_unknown_query_parameters_are_ignored(
    client: TestClient, world: World, key: dict[str, str]
) -> None:
    assert _ids(client, key, include_active_and_terminated="true", team_ids=3) == _all_ids(
        client, key
    )
