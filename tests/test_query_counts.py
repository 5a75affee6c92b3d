"""SQL per hot operation: a regression in database work fails here without timing anything.

On SQLite the budget is the statements sent (BEGIN, COMMIT and savepoints are local calls, not
round trips); on PostgreSQL it is every round trip to the server, transaction control
included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from grantly.app import create_app
from tests.conftest import World, exchange, obtain_code

_LOCAL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")

BUDGETS = {
    # the client read with its code (and the person's active flag); the code used, the access
    # token, the refresh token and the audit event, as one guarded step (``Transaction.guarded``)
    "code exchange": 5,
    # the client read with its refresh token; the rotation, the new pair and the audit event
    "refresh": 5,
    # the client read with the access token (joined with its application and user)
    "introspection": 1,
    # the access token (joined with its application and user)
    "bearer validation": 1,
    # GET /api/v1/me: the same one statement brings the person and the company's name
    "resource request": 1,
}

# Round trips: a unit whose only write is one guarded step needs no transaction (one
# statement is atomic): no BEGIN, no COMMIT.
POSTGRESQL_BUDGETS = {
    **BUDGETS,
    # the client with its code; the guarded step as one statement of data-modifying WITHs
    "code exchange": 2,
    # the client with its refresh token; the guarded step (the family lock inside it)
    "refresh": 2,
}


@pytest.fixture
def counted(world: World) -> Iterator[tuple[TestClient, list[str]]]:
    app = create_app(world.settings)
    statements: list[str] = []
    db = app.state.services.db
    local = db.backend == "sqlite"

    def count(sql: str) -> None:
        if not (local and sql.split(None, 1)[0].upper() in _LOCAL):
            statements.append(sql)

    db.observers.append(count)
    with TestClient(app, base_url="http://127.0.0.1:8000", follow_redirects=False) as client:
        yield client, statements


def _within(statements: list[str], operation: str, dialect: str) -> None:
    budget = (BUDGETS if dialect == "sqlite" else POSTGRESQL_BUDGETS)[operation]
    assert statements, f"{operation}: no statement was counted"
    assert len(statements) <= budget, (
        f"{operation} sent {len(statements)} statements (budget {budget}):\n"
        + "\n".join(s.split("\n")[0][:120] for s in statements)
    )


def test_the_hot_operations_stay_within_their_sql_budgets(counted, world: World) -> None:
    client, statements = counted
    dialect = client.app.state.services.db.backend  # type: ignore[attr-defined]
    auth = (world.app.client_id, world.app.client_secret or "")
    code = obtain_code(client, world)

    statements.clear()
    tokens = exchange(client, world.app, code).json()
    _within(statements, "code exchange", dialect)

    statements.clear()
    refreshed = client.post(
        "/oauth/token",
        auth=auth,
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    ).json()
    _within(statements, "refresh", dialect)

    statements.clear()
    facts = client.post("/oauth/introspect", auth=auth, data={"token": refreshed["access_token"]})
    assert facts.json()["active"] is True
    _within(statements, "introspection", dialect)

    statements.clear()
    info = client.get(
        "/oauth/token/info", headers={"Authorization": f"Bearer {refreshed['access_token']}"}
    )
    assert info.status_code == 200
    _within(statements, "bearer validation", dialect)

    statements.clear()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {refreshed['access_token']}"})
    assert me.status_code == 200
    assert me.json()["user"]["email"] == world.admin.email
    assert me.json()["company"]["id"] == world.company_a and me.json()["company"]["name"]
    _within(statements, "resource request", dialect)
