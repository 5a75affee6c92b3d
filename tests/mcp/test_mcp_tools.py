"""Grantly's MCP server at ``/mcp`` (grantly/mcp/server.py), in-process, by JSON-RPC over the
streamable HTTP transport as any MCP client sends it: ``initialize``, the ``initialized``
notification, ``tools/list`` and ``tools/call``.

What is checked: every request without a valid token for the audience ``{issuer}/mcp`` is a
401 naming the MCP endpoint's protected resource metadata (RFC 9728 §5.1); tokens for /api and
for /mcp open only their own resource (RFC 8707); the tools see what the same person sees
through /api (their company only, sensitive fields of others null), changes need ``write`` and
a principal acting for the company; a revoked token stops at once; ``mcp=False`` removes the
endpoint, its metadata and its resource identifier.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from grantly.app import create_app
from grantly.oauth.clock import FrozenClock
from grantly.settings import Settings
from grantly.store.people import Employee
from tests.api.conftest import EMPLOYEES, create_employee
from tests.conftest import (
    REDIRECT_URI,
    Person,
    World,
    authorize_params,
    callback_params,
    exchange,
    hidden_fields,
    sign_in,
)

ISSUER = "http://127.0.0.1:8000"
MCP_RESOURCE = f"{ISSUER}/mcp"
API_RESOURCE = f"{ISSUER}/api"
MCP_METADATA = "/.well-known/oauth-protected-resource/mcp"
MCP_POINTER = f'resource_metadata="{ISSUER}{MCP_METADATA}"'
API_POINTER = f'resource_metadata="{ISSUER}/.well-known/oauth-protected-resource/api"'
PROTOCOL_VERSION = "2025-11-25"
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
SENSITIVE = ("phone_number", "bank_number", "salary_cents")
ACCESS_TOKEN_LIFETIME = 3600  # Settings.access_token_lifetime's default

TARA_PHONE = "+34 600 000 001"
TARA_BANK = "ES9121000418450200051332"
TARA_SALARY = 4_200_000
OWN_PHONE = "+34 600 000 002"
OWN_BANK = "GB33BUKB20201555555555"
OWN_SALARY = 3_100_000
ADMIN_PHONE = "+34 600 000 003"
GLOBEX_PHONE = "+1 555 0100"


# --- the app, tokens and the MCP conversation ------------------------------------------------


@contextmanager
def serve(settings: Settings, clock: FrozenClock) -> Iterator[TestClient]:
    """The app in-process; the ``with`` runs its lifespan, which starts the MCP session
    manager."""
    with TestClient(
        create_app(settings, clock=clock),
        base_url=ISSUER,
        follow_redirects=False,
        client=("127.0.0.1", 50000),
    ) as http:
        yield http


@pytest.fixture
def http(world: World, clock: FrozenClock) -> Iterator[TestClient]:
    with serve(world.settings, clock) as client:
        yield client


def grant(
    http: TestClient,
    world: World,
    person: Person,
    scope: str = "read",
    resource: str | None = MCP_RESOURCE,
    **extra: str,
) -> dict[str, Any]:
    """``person`` (in a fresh browser) allows world.app for ``resource`` (none: the default
    audience, /api), and the code is exchanged naming the same resource: the token response."""
    http.cookies.clear()
    sign_in(http, person)
    params = authorize_params(world.app, scope=scope, **extra)
    if resource is not None:
        params["resource"] = resource
    page = http.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    decision = http.post("/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"})
    code = callback_params(decision)["code"]
    response = exchange(http, world.app, code, **({"resource": resource} if resource else {}))
    assert response.status_code == 200, response.text
    http.cookies.clear()
    return dict(response.json())


def token_for(http: TestClient, world: World, person: Person, **kwargs: Any) -> str:
    return str(grant(http, world, person, **kwargs)["access_token"])


def post_mcp(http: TestClient, token: str | None, body: dict[str, Any]) -> httpx.Response:
    headers = dict(MCP_HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return http.post("/mcp", headers=headers, json=body)


class Session:
    """One MCP client's conversation, over the stateless transport (no session id)."""

    def __init__(self, http: TestClient, token: str) -> None:
        self.http, self.token, self.next_id = http, token, 1

    def request(self, method: str, params: dict[str, Any] | None = None) -> httpx.Response:
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            body["params"] = params
        self.next_id += 1
        return post_mcp(self.http, self.token, body)

    def result(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.request(method, params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        answer = response.json()
        assert answer["jsonrpc"] == "2.0" and answer["id"] == self.next_id - 1
        assert "error" not in answer, answer
        return dict(answer["result"])

    def initialize(self) -> dict[str, Any]:
        result = self.result(
            "initialize",
            {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "grantly-tests", "version": "1"},
            },
        )
        notified = post_mcp(
            self.http, self.token, {"jsonrpc": "2.0", "method": "notifications/initialized"}
        )
        assert notified.status_code == 202, notified.text
        return result

    def call(self, name: str, **arguments: Any) -> dict[str, Any]:
        """The tool's result (content, isError and, on success, structuredContent)."""
        return self.result("tools/call", {"name": name, "arguments": arguments})


def session(http: TestClient, token: str) -> Session:
    started = Session(http, token)
    started.initialize()
    return started


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert result["isError"] is False, result
    return dict(result["structuredContent"])


def failure(result: dict[str, Any]) -> str:
    """The text of an error result (a tool that refused)."""
    assert result["isError"] is True, result
    assert "structuredContent" not in result or result["structuredContent"] is None
    [content] = result["content"]
    assert content["type"] == "text"
    return str(content["text"])


def set_fields(world: World, company_id: int, employee_id: int, **values: Any) -> Employee:
    """Sensitive fields of an existing person, straight in the database (test data)."""

    async def work(uow: Any) -> Employee:
        employee = await uow.people.get(company_id, employee_id)
        assert employee is not None
        return await uow.people.update(employee, values, int(time.time()))  # type: ignore[no-any-return]

    return world.run(work)  # type: ignore[no-any-return]


def stored(world: World, company_id: int, employee_id: int) -> Employee:
    async def work(uow: Any) -> Employee | None:
        return await uow.people.get(company_id, employee_id)

    found = world.run(work)
    assert found is not None
    return found  # type: ignore[no-any-return]


@pytest.fixture
def people(world: World, clock: FrozenClock) -> dict[str, int]:
    """Company A: the admin, the employee and Tara, each with sensitive fields; company B's
    admin with a phone number too. Their ids by name."""
    tara = create_employee(
        world,
        world.company_a,
        "tara@acme.example",
        now=clock.now(),
        first_name="Tara",
        last_name="Target",
        phone_number=TARA_PHONE,
        bank_number=TARA_BANK,
        bank_number_format="iban",
        salary_cents=TARA_SALARY,
    )
    set_fields(
        world,
        world.company_a,
        world.employee.id,
        phone_number=OWN_PHONE,
        bank_number=OWN_BANK,
        salary_cents=OWN_SALARY,
    )
    set_fields(world, world.company_a, world.admin.id, phone_number=ADMIN_PHONE, salary_cents=1)
    set_fields(world, world.company_b, world.other_admin.id, phone_number=GLOBEX_PHONE)
    return {
        "admin": world.admin.id,
        "employee": world.employee.id,
        "tara": tara.id,
        "globex": world.other_admin.id,
    }


def by_id(listing: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {employee["id"]: employee for employee in listing["employees"]}


# --- 1. every request without a valid token is a 401 naming the metadata ------------------


def test_the_conversation_works_with_a_token_for_the_mcp_endpoint(
    http: TestClient, world: World
) -> None:
    token = token_for(http, world, world.employee)
    result = Session(http, token).initialize()
    assert result["protocolVersion"] == PROTOCOL_VERSION
    assert result["serverInfo"]["name"] == "Grantly"
    assert "tools" in result["capabilities"]
    assert "employees of the company" in result["instructions"]


def test_no_token_is_a_401_naming_the_mcp_metadata_without_an_error_code(
    http: TestClient, world: World
) -> None:
    response = post_mcp(http, None, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert MCP_POINTER in challenge
    # RFC 6750 §3.1: a request without credentials gets no error code.
    assert "error=" not in challenge


@pytest.mark.parametrize(
    "token", ["gat_not-a-real-token", "x" * 40, "gat_"], ids=["unknown", "garbage", "prefix"]
)
def test_a_bad_token_is_a_401_invalid_token_naming_the_mcp_metadata(
    http: TestClient, world: World, token: str
) -> None:
    response = post_mcp(http, token, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert MCP_POINTER in challenge
    assert 'error="invalid_token"' in challenge


def test_an_expired_token_is_a_401_from_the_moment_it_expires(
    http: TestClient, world: World, clock: FrozenClock
) -> None:
    token = token_for(http, world, world.employee)
    clock.advance(ACCESS_TOKEN_LIFETIME - 1)
    assert ok(session(http, token).call("whoami"))["resource_owner_type"] == "user"
    clock.advance(1)
    response = post_mcp(http, token, {"jsonrpc": "2.0", "id": 9, "method": "tools/list"})
    assert response.status_code == 401
    assert MCP_POINTER in response.headers["www-authenticate"]
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_a_tool_call_with_an_expired_token_is_a_401_not_a_result(
    http: TestClient, world: World, clock: FrozenClock
) -> None:
    token = token_for(http, world, world.employee)
    started = session(http, token)
    clock.advance(ACCESS_TOKEN_LIFETIME + 1)
    response = started.request("tools/call", {"name": "whoami", "arguments": {}})
    assert response.status_code == 401
    assert MCP_POINTER in response.headers["www-authenticate"]


# --- 2. audience binding: /api's tokens and /mcp's tokens open only their own resource -------


def test_a_token_issued_without_resource_is_refused_at_the_mcp_endpoint(
    http: TestClient, world: World
) -> None:
    token = token_for(http, world, world.employee, resource=None)
    assert http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    for method in ("initialize", "tools/list"):
        response = post_mcp(http, token, {"jsonrpc": "2.0", "id": 1, "method": method})
        assert response.status_code == 401, method
        assert MCP_POINTER in response.headers["www-authenticate"]
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_a_token_naming_the_api_explicitly_is_refused_at_the_mcp_endpoint(
    http: TestClient, world: World
) -> None:
    token = token_for(http, world, world.admin, resource=API_RESOURCE)
    response = post_mcp(http, token, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 401


def test_a_token_for_the_mcp_endpoint_is_refused_by_the_api(http: TestClient, world: World) -> None:
    token = token_for(http, world, world.employee)
    response = http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    challenge = response.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge and API_POINTER in challenge
    employees = http.get(EMPLOYEES, headers={"Authorization": f"Bearer {token}"})
    assert employees.status_code == 401 and employees.json()["error"] == "invalid_token"
    # ... while it does open the MCP endpoint.
    assert ok(session(http, token).call("whoami"))["user"]["id"] == world.employee.id


def test_a_token_for_both_resources_opens_both(http: TestClient, world: World) -> None:
    http.cookies.clear()
    sign_in(http, world.employee)
    params = {**authorize_params(world.app, scope="read"), "resource": [API_RESOURCE, MCP_RESOURCE]}
    page = http.get("/oauth/authorize", params=params)
    fields: dict[str, list[str]] = {}
    for name, value in hidden_fields(page.text).items():
        fields[name] = [value]
    fields["resource"] = [API_RESOURCE, MCP_RESOURCE]
    fields["decision"] = ["allow"]
    code = callback_params(http.post("/oauth/authorize", data=fields))["code"]
    token = exchange(http, world.app, code).json()["access_token"]
    assert http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert ok(session(http, token).call("whoami"))["user"]["id"] == world.employee.id


def test_a_refreshed_token_keeps_the_mcp_audience(http: TestClient, world: World) -> None:
    tokens = grant(http, world, world.employee)
    refreshed = http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(world.app.client_id, world.app.client_secret or ""),
    )
    assert refreshed.status_code == 200, refreshed.text
    token = refreshed.json()["access_token"]
    assert ok(session(http, token).call("whoami"))["user"]["email"] == world.employee.email
    assert http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


# --- 3. the tools ------------------------------------------------------------------------------


def test_tools_list_names_exactly_the_four_tools(http: TestClient, world: World) -> None:
    tools = session(http, token_for(http, world, world.employee)).result("tools/list")["tools"]
    assert sorted(tool["name"] for tool in tools) == [
        "get_employee",
        "list_employees",
        "update_employee",
        "whoami",
    ]
    schemas = {tool["name"]: tool["inputSchema"] for tool in tools}
    assert schemas["get_employee"]["required"] == ["employee_id"]
    assert set(schemas["list_employees"]["properties"]) == {
        "search",
        "only_active",
        "page",
        "limit",
    }
    assert set(schemas["update_employee"]["properties"]) == {
        "employee_id",
        "first_name",
        "last_name",
        "preferred_name",
        "phone_number",
    }
    assert schemas["whoami"]["properties"] == {}


def test_whoami_tells_the_employee_s_user_token(http: TestClient, world: World) -> None:
    tokens = grant(http, world, world.employee, scope="read write")
    me = ok(session(http, tokens["access_token"]).call("whoami"))
    assert me == {
        "resource_owner_type": "user",
        "company": {"id": world.company_a, "name": "Acme"},
        "user": {
            "id": world.employee.id,
            "email": world.employee.email,
            "name": "employee",
            "admin": False,
        },
        "client_id": world.app.client_id,
        "scope": "read write",
        "expires_at": tokens["created_at"] + ACCESS_TOKEN_LIFETIME,
    }


# --- 4. an employee's user token sees what the employee sees -----------------------------------


def test_an_employee_lists_only_their_company_with_others_sensitive_fields_null(
    http: TestClient, world: World, people: dict[str, int]
) -> None:
    listing = ok(session(http, token_for(http, world, world.employee)).call("list_employees"))
    assert [e["id"] for e in listing["employees"]] == sorted(
        [people["admin"], people["employee"], people["tara"]]
    )
    assert listing["total"] == 3 and listing["page"] == 1 and listing["has_next_page"] is False
    assert people["globex"] not in by_id(listing)
    assert {e["company_id"] for e in listing["employees"]} == {world.company_a}
    assert GLOBEX_PHONE not in str(listing)
    found = by_id(listing)
    own = found[people["employee"]]
    assert (own["phone_number"], own["bank_number"], own["salary_cents"]) == (
        OWN_PHONE,
        OWN_BANK,
        OWN_SALARY,
    )
    for other in ("admin", "tara"):
        for field in (*SENSITIVE, "bank_number_format", "birthday_on"):
            assert found[people[other]][field] is None, (other, field)
    # Directory fields are everyone's.
    tara = found[people["tara"]]
    assert (tara["first_name"], tara["last_name"], tara["email"]) == (
        "Tara",
        "Target",
        "tara@acme.example",
    )
    assert found[people["admin"]]["role"] == "admin" and own["role"] == "employee"


def test_an_employee_gets_themselves_with_and_a_colleague_without_sensitive_fields(
    http: TestClient, world: World, people: dict[str, int]
) -> None:
    tools = session(http, token_for(http, world, world.employee))
    own = ok(tools.call("get_employee", employee_id=people["employee"]))
    assert own["id"] == people["employee"] and own["email"] == world.employee.email
    assert own["phone_number"] == OWN_PHONE and own["salary_cents"] == OWN_SALARY
    tara = ok(tools.call("get_employee", employee_id=people["tara"]))
    assert tara["email"] == "tara@acme.example"
    assert [tara[field] for field in SENSITIVE] == [None, None, None]


def test_another_company_s_employee_is_no_such_employee(
    http: TestClient, world: World, people: dict[str, int]
) -> None:
    tools = session(http, token_for(http, world, world.employee))
    text = failure(tools.call("get_employee", employee_id=people["globex"]))
    assert "no such employee" in text
    assert GLOBEX_PHONE not in text and world.other_admin.email not in text
    # An id that exists nowhere is answered the same way: nothing tells the other exists.
    assert failure(tools.call("get_employee", employee_id=999_999)) == text


def test_an_admin_of_company_a_does_not_see_company_b_either(
    http: TestClient, world: World, people: dict[str, int]
) -> None:
    tools = session(http, token_for(http, world, world.admin))
    assert "no such employee" in failure(tools.call("get_employee", employee_id=people["globex"]))
    listing = ok(tools.call("list_employees", search="admin"))
    # Company B's admin is called "admin" too.
    assert [e["id"] for e in listing["employees"]] == [people["admin"]]
    assert listing["employees"][0]["phone_number"] == ADMIN_PHONE


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("tara", ["tara"]),
        ("TARG", ["tara"]),  # any part of a name, in any case
        ("employee", ["employee"]),
        ("nobody", []),
        ("%", []),  # a LIKE wildcard is matched literally
    ],
)
def test_search_filters_by_name(
    http: TestClient,
    world: World,
    people: dict[str, int],
    search: str,
    expected: list[str],
) -> None:
    listing = ok(
        session(http, token_for(http, world, world.employee)).call("list_employees", search=search)
    )
    assert [e["id"] for e in listing["employees"]] == [people[name] for name in expected]
    assert listing["total"] == len(expected)


def test_list_employees_pages(http: TestClient, world: World, people: dict[str, int]) -> None:
    tools = session(http, token_for(http, world, world.employee))
    ordered = sorted([people["admin"], people["employee"], people["tara"]])
    seen = []
    for page in (1, 2, 3):
        listing = ok(tools.call("list_employees", page=page, limit=1))
        assert listing["total"] == 3 and listing["page"] == page
        assert listing["has_next_page"] is (page < 3)
        seen += [e["id"] for e in listing["employees"]]
    assert seen == ordered
    beyond = ok(tools.call("list_employees", page=4, limit=1))
    assert beyond["employees"] == [] and beyond["has_next_page"] is False


BAD_PAGE = "page must be 1 or more, limit between 1 and 100."


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"page": 0}, BAD_PAGE),
        ({"page": -1}, BAD_PAGE),
        ({"limit": 0}, BAD_PAGE),
        ({"limit": 101}, BAD_PAGE),
        ({"search": "x" * 201}, "search may be at most 200 characters."),
    ],
    ids=["page-0", "page-negative", "limit-0", "limit-101", "long-search"],
)
def test_list_employees_refuses_bad_arguments(
    http: TestClient, world: World, arguments: dict[str, Any], expected: str
) -> None:
    tools = session(http, token_for(http, world, world.employee))
    text = failure(tools.call("list_employees", **arguments))
    assert text == f"Error executing tool list_employees: {expected}"


def test_only_active_leaves_out_terminated_employees(
    http: TestClient, world: World, people: dict[str, int]
) -> None:
    async def terminate(uow: Any) -> None:
        tara = await uow.people.get(world.company_a, people["tara"])
        await uow.people.terminate(tara, dt.date(2020, 1, 31), "left", int(time.time()))

    world.run(terminate)
    tools = session(http, token_for(http, world, world.employee))
    everyone = ok(tools.call("list_employees"))
    assert people["tara"] in by_id(everyone) and by_id(everyone)[people["tara"]]["active"] is False
    active = ok(tools.call("list_employees", only_active=True))
    assert [e["id"] for e in active["employees"]] == sorted([people["admin"], people["employee"]])


# --- 5. update_employee: write scope and a principal acting for the company ------------------


def test_an_employee_s_write_token_may_not_update(
    http: TestClient, world: World, people: dict[str, int]
) -> None:
    tools = session(http, token_for(http, world, world.employee, scope="read write"))
    for employee_id in (people["employee"], people["tara"]):
        text = failure(tools.call("update_employee", employee_id=employee_id, first_name="Mallory"))
        assert "only an admin's user token or a company token may change employees" in text
    assert stored(world, world.company_a, people["employee"]).first_name == "employee"
    assert stored(world, world.company_a, people["tara"]).first_name == "Tara"


def test_an_admin_s_read_token_may_not_update(
    http: TestClient, world: World, people: dict[str, int]
) -> None:
    tools = session(http, token_for(http, world, world.admin, scope="read"))
    text = failure(tools.call("update_employee", employee_id=people["tara"], first_name="Renamed"))
    assert "'write' scope" in text
    assert stored(world, world.company_a, people["tara"]).first_name == "Tara"


def test_an_admin_s_write_token_updates_and_the_api_sees_it(
    http: TestClient, world: World, people: dict[str, int]
) -> None:
    tools = session(http, token_for(http, world, world.admin, scope="read write"))
    updated = ok(
        tools.call(
            "update_employee",
            employee_id=people["tara"],
            first_name="Renamed",
            phone_number="+34 611 111 111",
        )
    )
    assert updated["id"] == people["tara"]
    assert updated["first_name"] == "Renamed" and updated["last_name"] == "Target"
    assert updated["full_name"] == "Renamed Target"
    assert updated["phone_number"] == "+34 611 111 111"
    assert updated["bank_number"] == TARA_BANK  # untouched, and an admin sees it
    # Through /api, with a token for /api.
    api_token = token_for(http, world, world.admin, resource=None)
    response = http.get(
        f"{EMPLOYEES}/{people['tara']}", headers={"Authorization": f"Bearer {api_token}"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["first_name"], body["full_name"], body["phone_number"]) == (
        "Renamed",
        "Renamed Target",
        "+34 611 111 111",
    )
    # ... and through the MCP endpoint again.
    again = ok(tools.call("get_employee", employee_id=people["tara"]))
    assert again["first_name"] == "Renamed"


def test_an_admin_may_not_update_another_company_s_employee(
    http: TestClient, world: World, people: dict[str, int]
) -> None:
    tools = session(http, token_for(http, world, world.admin, scope="read write"))
    text = failure(tools.call("update_employee", employee_id=people["globex"], first_name="Owned"))
    assert "no such employee" in text
    assert stored(world, world.company_b, people["globex"]).first_name == "admin"


def test_an_update_with_a_control_character_is_refused(
    http: TestClient, world: World, people: dict[str, int]
) -> None:
    tools = session(http, token_for(http, world, world.admin, scope="read write"))
    text = failure(tools.call("update_employee", employee_id=people["tara"], first_name="X\x00"))
    assert "first_name" in text
    assert stored(world, world.company_a, people["tara"]).first_name == "Tara"


def test_a_write_only_token_is_403_insufficient_scope_asking_for_read(
    http: TestClient, world: World, people: dict[str, int]
) -> None:
    """Every tool reads: the endpoint needs ``read`` (RFC 6750 §3.1 ``insufficient_scope``,
    with the scope needed, so that the client asks for it: step-up authorization)."""
    token = token_for(http, world, world.admin, scope="write")
    for method in ("initialize", "tools/list", "tools/call"):
        response = post_mcp(http, token, {"jsonrpc": "2.0", "id": 1, "method": method})
        assert response.status_code == 403, method
        challenge = response.headers["www-authenticate"]
        assert MCP_POINTER in challenge
        assert 'error="insufficient_scope"' in challenge and 'scope="read"' in challenge
    assert stored(world, world.company_a, people["tara"]).last_name == "Target"


# --- 6. revocation and termination stop a token at once ----------------------------------------


def test_a_revoked_token_is_a_401_at_the_next_tool_call(http: TestClient, world: World) -> None:
    token = token_for(http, world, world.employee)
    tools = session(http, token)
    assert ok(tools.call("whoami"))["user"]["id"] == world.employee.id
    revoked = http.post(
        "/oauth/revoke",
        data={"token": token, "token_type_hint": "access_token"},
        auth=(world.app.client_id, world.app.client_secret or ""),
    )
    assert revoked.status_code == 200
    response = tools.request("tools/call", {"name": "whoami", "arguments": {}})
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert MCP_POINTER in challenge and 'error="invalid_token"' in challenge
    listed = tools.request("tools/list")
    assert listed.status_code == 401


def test_revoking_the_refresh_token_stops_its_access_token_at_the_mcp_endpoint(
    http: TestClient, world: World
) -> None:
    tokens = grant(http, world, world.employee)
    tools = session(http, tokens["access_token"])
    http.post(
        "/oauth/revoke",
        data={"token": tokens["refresh_token"]},
        auth=(world.app.client_id, world.app.client_secret or ""),
    )
    response = tools.request("tools/call", {"name": "list_employees", "arguments": {}})
    assert response.status_code == 401


def test_a_terminated_employee_s_token_is_a_401(
    http: TestClient, world: World, people: dict[str, int]
) -> None:
    token = token_for(http, world, world.employee)
    tools = session(http, token)
    assert ok(tools.call("whoami"))["user"]["id"] == world.employee.id
    admin_api = token_for(http, world, world.admin, scope="read write", resource=None)
    terminated = http.post(
        f"{EMPLOYEES}/terminate",
        headers={"Authorization": f"Bearer {admin_api}"},
        json={"id": people["employee"], "terminated_on": "2020-01-31"},
    )
    assert terminated.status_code == 200, terminated.text
    response = tools.request("tools/call", {"name": "whoami", "arguments": {}})
    assert response.status_code == 401
    assert MCP_POINTER in response.headers["www-authenticate"]


# --- 7. mcp=False: no endpoint, no metadata, no resource identifier --------------------------


def test_with_mcp_on_the_metadata_names_both_resources(http: TestClient, world: World) -> None:
    server = http.get("/.well-known/oauth-authorization-server").json()
    assert server["protected_resources"] == [API_RESOURCE, MCP_RESOURCE]
    resource = http.get(MCP_METADATA)
    assert resource.status_code == 200
    assert resource.json() == {
        "resource": MCP_RESOURCE,
        "authorization_servers": [ISSUER],
        "scopes_supported": ["read", "write"],
        "bearer_methods_supported": ["header"],
        "dpop_signing_alg_values_supported": ["ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA"],
        "resource_name": "Grantly MCP server",
    }


def test_with_mcp_off_there_is_no_endpoint_no_metadata_and_no_resource(
    world: World, clock: FrozenClock
) -> None:
    settings = world.settings.model_copy(update={"mcp": False})
    with serve(settings, clock) as http:
        api_token = token_for(http, world, world.employee, resource=None)
        for token in (None, api_token):
            response = post_mcp(
                http,
                token,
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": PROTOCOL_VERSION,
                        "capabilities": {},
                        "clientInfo": {"name": "t", "version": "1"},
                    },
                },
            )
            assert response.status_code == 404
            assert "www-authenticate" not in response.headers
        metadata = http.get(MCP_METADATA)
        assert metadata.status_code == 404
        assert metadata.json()["error"] == "not_found"
        server = http.get("/.well-known/oauth-authorization-server").json()
        assert server["protected_resources"] == [API_RESOURCE]
        # The API's metadata is still there.
        assert http.get("/.well-known/oauth-protected-resource/api").status_code == 200
        sign_in(http, world.employee)
        refused = http.get(
            "/oauth/authorize",
            params=authorize_params(world.app, scope="read", resource=MCP_RESOURCE, state="s7"),
        )
        assert refused.status_code == 302
        assert refused.headers["location"].startswith(REDIRECT_URI + "?")
        params = callback_params(refused)
        assert params["error"] == "invalid_target"
        assert params["state"] == "s7" and params["iss"] == ISSUER
        assert "code" not in params


def test_with_mcp_off_the_code_exchange_may_not_name_the_mcp_endpoint(
    world: World, clock: FrozenClock
) -> None:
    settings = world.settings.model_copy(update={"mcp": False})
    with serve(settings, clock) as http:
        sign_in(http, world.employee)
        page = http.get("/oauth/authorize", params=authorize_params(world.app, scope="read"))
        decision = http.post(
            "/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"}
        )
        code = callback_params(decision)["code"]
        response = exchange(http, world.app, code, resource=MCP_RESOURCE)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_target"


# --- 8. a company token acts for the company -------------------------------------------------


def test_a_company_token_acts_for_the_company_and_sees_everyone_s_sensitive_fields(
    http: TestClient, world: World, people: dict[str, int]
) -> None:
    tools = session(
        http, token_for(http, world, world.admin, scope="read", resource_owner_type="company")
    )
    me = ok(tools.call("whoami"))
    assert me["resource_owner_type"] == "company"
    assert me["company"] == {"id": world.company_a, "name": "Acme"}
    assert me["user"] is None
    assert me["client_id"] == world.app.client_id and me["scope"] == "read"
    assert me["expires_at"] is None  # company tokens never expire
    listing = by_id(ok(tools.call("list_employees")))
    assert set(listing) == {people["admin"], people["employee"], people["tara"]}
    assert listing[people["tara"]]["phone_number"] == TARA_PHONE
    assert listing[people["tara"]]["bank_number"] == TARA_BANK
    assert listing[people["tara"]]["salary_cents"] == TARA_SALARY
    assert listing[people["employee"]]["bank_number"] == OWN_BANK
    assert listing[people["employee"]]["salary_cents"] == OWN_SALARY
    assert listing[people["admin"]]["phone_number"] == ADMIN_PHONE
    assert "no such employee" in failure(tools.call("get_employee", employee_id=people["globex"]))


def test_a_company_token_with_write_may_update(
    http: TestClient, world: World, people: dict[str, int]
) -> None:
    tools = session(
        http,
        token_for(http, world, world.admin, scope="read write", resource_owner_type="company"),
    )
    updated = ok(tools.call("update_employee", employee_id=people["employee"], preferred_name="Em"))
    assert updated["preferred_name"] == "Em"
    assert stored(world, world.company_a, people["employee"]).preferred_name == "Em"


# --- arguments /api bounds, bounded the same way -----------------------------------------


@pytest.mark.parametrize("employee_id", [2**31, 2**63], ids=["past-int32", "past-int64"])
def test_a_huge_employee_id_is_no_such_employee(
    http: TestClient, world: World, employee_id: int
) -> None:
    tools = session(http, token_for(http, world, world.admin, scope="read write"))
    assert "no such employee" in failure(tools.call("get_employee", employee_id=employee_id))
    assert "no such employee" in failure(
        tools.call("update_employee", employee_id=employee_id, first_name="Huge")
    )


def test_a_page_past_any_offset_is_answered_as_a_bad_page(http: TestClient, world: World) -> None:
    tools = session(http, token_for(http, world, world.employee))
    result = tools.call("list_employees", page=2**62, limit=100)
    assert result["isError"]
    assert "page must be" in failure(result)


def test_a_nul_in_search_is_answered_the_same_way_on_every_database(
    http: TestClient, world: World
) -> None:
    tools = session(http, token_for(http, world, world.employee))
    result = tools.call("list_employees", search="a\x00b")
    assert result["isError"]
    assert "control characters" in failure(result)


def test_get_and_head_are_405_never_a_stream_held_open(http: TestClient, world: World) -> None:
    """Stateless: no event stream to offer (the transport allows 405), so a GET with a valid
    token cannot hold a connection open."""
    token = token_for(http, world, world.employee)
    for method in ("GET", "HEAD", "DELETE"):
        response = http.request(
            method,
            "/mcp",
            headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
        )
        assert response.status_code == 405, method
        assert response.headers["allow"] == "POST"


def test_two_authorization_headers_are_refused_as_on_the_api(
    http: TestClient, world: World
) -> None:
    token = token_for(http, world, world.employee)
    response = http.post(
        "/mcp",
        headers=[
            ("Authorization", f"Bearer {token}"),
            ("Authorization", "Bearer x"),
            ("Accept", "application/json, text/event-stream"),
            ("Content-Type", "application/json"),
        ],
        content=b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}',
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
