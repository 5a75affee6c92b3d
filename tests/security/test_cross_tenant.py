"""Threat: one tenant reaching another (RFC 9700 §2.3 access token privilege restriction,
§4.10.2 audience restriction, §4.15; RFC 7009 §2.1; RFC 7662 §4).

Company A's admin, A's tokens, A's API key and A's registered client all attack company B:
B's employees, B's applications, B's tokens and grants, B's audit trail. Every attempt must
fail without telling that B's record exists, and leave B as it was. Inside a company, an
employee may not obtain what only an admin may (a company token), and the refusal is audited.

Covered elsewhere: B's credentials against A's employee by id, filters, creation and manager
ids (``tests/api/test_tenancy.py``), the full permission matrix of A's own credentials
(``tests/api/test_permission_matrix.py``), B's API key revoked by A (``tests/api/
test_api_keys.py::test_another_company_s_key_cannot_be_revoked``), another company's client
introspecting a token (``tests/web/test_token_management.py::
test_another_companys_client_sees_the_token_as_inactive``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from grantly.store import tables as t
from tests.api.conftest import (
    EMPLOYEES,
    api_key,
    bearer,
    company_token,
    dashboard_api_key,
    token_response,
    user_token,
)
from tests.conftest import (
    World,
    authorize_params,
    callback_params,
    consent,
    csrf_of,
    hidden_fields,
    sign_in,
)
from tests.security.conftest import audit_trail, basic, me

CREDENTIALS_OF_A: dict[str, Callable[[TestClient, World], dict[str, str]]] = {
    "A's admin user token": lambda c, w: bearer(user_token(c, w.admin, w.app)),
    "A's company token": lambda c, w: bearer(company_token(c, w.admin, w.app)),
    "A's API key": lambda c, w: api_key(dashboard_api_key(c, w.admin)),
    # B registered this application; A's admin authorized it for company A.
    "a company token of A held by B's application": lambda c, w: bearer(
        company_token(c, w.admin, w.other_app)
    ),
}


@pytest.mark.parametrize("credential", CREDENTIALS_OF_A)
def test_a_credential_of_company_a_neither_reads_nor_changes_company_b(
    client: TestClient, world: World, credential: str
) -> None:
    """RFC 9700 §2.3 / §4.10.2: a token's reach is its company's data. Every way of
    naming B's admin (id, e-mail filter, write, terminate) answers as if they did not exist."""
    headers = CREDENTIALS_OF_A[credential](client, world)
    victim = world.other_admin
    unknown = client.get(f"{EMPLOYEES}/999999", headers=headers)
    answers = {
        "read": client.get(f"{EMPLOYEES}/{victim.id}", headers=headers),
        "write": client.put(
            f"{EMPLOYEES}/{victim.id}", headers=headers, json={"first_name": "Mallory"}
        ),
        "terminate": client.post(
            f"{EMPLOYEES}/terminate",
            headers=headers,
            json={"id": victim.id, "terminated_on": "2030-01-01"},
        ),
    }
    for what, answer in answers.items():
        assert answer.status_code == 404, (what, answer.text)
    assert answers["read"].json() == unknown.json()
    listed = client.get(EMPLOYEES, headers=headers, params={"emails[]": victim.email}).json()
    assert listed["data"] == []
    everyone = client.get(EMPLOYEES, headers=headers, params={"limit": 100}).json()["data"]
    assert {e["company_id"] for e in everyone} == {world.company_a}

    employee = world.run(lambda uow: uow.people.get(world.company_b, victim.id))
    assert employee.first_name != "Mallory" and employee.active


def _b_application_attacks(world: World) -> dict[str, tuple[str, dict[str, str]]]:
    b = f"/oauth/applications/{world.other_app.id}"
    return {
        "edit": (
            b,
            {
                "name": "Hijacked",
                "redirect_uris": "https://attacker.example/cb",
                "confidential": "on",
                "scopes": "read",
            },
        ),
        "delete": (f"{b}/delete", {}),
        "regenerate secret": (f"{b}/secret", {}),
    }


def test_a_company_a_admin_cannot_touch_company_bs_applications(
    client: TestClient, world: World
) -> None:
    """RFC 9700 §2.5 / §4.15 (client credentials belong to their owner): with a valid CSRF
    token, A's admin aims every dashboard action at B's application by id: 404, and B's
    application keeps its name, redirect URI and secret."""
    sign_in(client, world.admin)
    page = client.get("/oauth/applications")
    for what, (path, fields) in _b_application_attacks(world).items():
        response = client.post(
            path,
            data={
                **fields,
                "csrf_token": csrf_of(page.text),
                "form_id": hidden_fields(page.text).get("form_id", what),
            },
        )
        assert response.status_code == 404, what
        assert world.other_app.client_secret not in response.text
    for path in ("", "/edit", "/authorize"):
        shown = client.get(f"/oauth/applications/{world.other_app.id}{path}")
        assert shown.status_code == 404, path
        assert world.other_app.client_id not in shown.text
    row = world.run(
        lambda c: c.tx.rows(
            select(t.applications.c.name, t.applications.c.redirect_uris).where(
                t.applications.c.id == world.other_app.id
            )
        )
    )[0]
    assert row.name == "Globex integration" and "attacker" not in str(row.redirect_uris)
    probe = client.post("/oauth/introspect", data={"token": "gat_x"}, auth=basic(world.other_app))
    assert probe.status_code == 200  # B's secret still authenticates


def test_company_a_cannot_revoke_or_inspect_company_bs_tokens(
    client: TestClient, world: World
) -> None:
    """RFC 7009 §2.1 ("the token was issued to the client making the revocation request")
    and RFC 7662 §4: A's client cannot revoke B's tokens nor learn anything about them; A's
    admin cannot revoke B's grant from the authorized-applications page."""
    tokens = token_response(client, world.other_admin, world.other_app)
    b_company = company_token(client, world.other_admin, world.other_app)
    for token in (tokens["access_token"], tokens["refresh_token"], b_company):
        seen = client.post("/oauth/introspect", data={"token": token}, auth=basic(world.app))
        assert seen.json() == {"active": False}
        revoked = client.post("/oauth/revoke", data={"token": token}, auth=basic(world.app))
        assert revoked.status_code == 200  # RFC 7009: no oracle
    assert me(client, tokens["access_token"]) == 200 and me(client, b_company) == 200

    b_grants = world.run(
        lambda c: c.tx.rows(
            select(t.consents.c.id).where(t.consents.c.application_id == world.other_app.id)
        )
    )
    sign_in(client, world.admin)
    page = client.get("/oauth/authorized_applications")
    for (consent_id,) in b_grants:
        response = client.post(
            f"/oauth/authorized_applications/{consent_id}/revoke",
            data={"csrf_token": csrf_of(page.text)},
        )
        assert response.status_code == 404
    assert me(client, tokens["access_token"]) == 200 and me(client, b_company) == 200


def test_company_a_sees_nothing_of_company_bs_audit_trail(client: TestClient, world: World) -> None:
    """RFC 9700 §2.3 (privileges restricted to the tenant): the audit trail names people, applications and addresses: A's admin
    sees none of B's events — B's grants, B's failed client authentication, B's replay."""
    sign_in(client, world.other_admin)
    code = callback_params(consent(client, authorize_params(world.other_app)))["code"]
    client.cookies.clear()
    from tests.conftest import exchange

    exchange(client, world.other_app, code)
    exchange(client, world.other_app, code)  # replay
    client.post("/oauth/revoke", data={"token": "x"}, auth=(world.other_app.client_id, "gcs_x"))
    assert {trace.company_id for trace in audit_trail(world)} == {world.company_b}

    sign_in(client, world.admin)
    trail = client.get("/audit")
    assert trail.status_code == 200
    # After the filters' form, which names every kind of event.
    events = trail.text.split('class="filters"', 1)[1].split("</form>", 1)[1]
    for text in (world.other_admin.email, "Globex", "replayed", "Client authentication failed"):
        assert text not in events, text


def test_an_employee_cannot_obtain_a_company_token_and_the_refusal_is_audited(
    client: TestClient, world: World
) -> None:
    """RFC 9700 §2.3 / RFC 6749 §4.1.2.1 (``access_denied``): a company token acts for the
    whole company and never expires, so only an admin may authorize one. An employee who
    presses Allow anyway gets no code, the client gets ``access_denied`` — and the company's
    admins see the attempt."""
    sign_in(client, world.employee)
    response = consent(client, authorize_params(world.app, resource_owner_type="company"))
    params = callback_params(response)
    assert params["error"] == "access_denied" and "code" not in params
    denied = [trace for trace in audit_trail(world) if trace.event == "authorization.denied"]
    assert len(denied) == 1
    assert (denied[0].company_id, denied[0].actor_user_id) == (world.company_a, world.employee.id)
    assert denied[0].detail.get("resource_owner_type") == "company"
