"""Threat: authorization code replay (RFC 6749 §4.1.2, §10.5; RFC 9700 §4.5, §2.1.1).

A code that leaked after its legitimate use (browser history, a log, a proxy) is replayed.
The replay must fail, revoke every token already issued from the code — including those
obtained since by refreshing — and leave a ``code.replayed`` event in the company's audit
trail. Codes must not live longer than ten minutes.

Covered elsewhere: concurrent redemptions of one code, only one succeeding
(``tests/test_races.py``, ``tests/test_across_processes.py``); the access and refresh token of
a replayed code dying (``tests/web/test_token_endpoint.py::
test_a_reused_code_fails_and_revokes_the_tokens_issued_from_it``).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from grantly.app import create_app
from grantly.oauth.clock import FrozenClock
from grantly.settings import Settings
from tests.conftest import World, exchange, make_settings, obtain_code
from tests.security.conftest import audit_trail, me, oauth_error, refresh


def test_a_replay_revokes_the_tokens_refreshed_since_and_is_audited(
    client: TestClient, world: World
) -> None:
    """RFC 6749 §4.1.2 ("SHOULD revoke all tokens previously issued based on that
    authorization code"), RFC 9700 §4.5: the revocation follows the grant through rotation,
    and the company's admins see it."""
    code = obtain_code(client, world, world.employee)
    first = exchange(client, world.app, code).json()
    rotated = refresh(client, world.app, first["refresh_token"]).json()
    assert me(client, rotated["access_token"]) == 200

    replay = exchange(client, world.app, code)
    oauth_error(replay, 400, "invalid_grant")

    assert me(client, rotated["access_token"]) == 401
    oauth_error(refresh(client, world.app, rotated["refresh_token"]), 400, "invalid_grant")
    replayed = [trace for trace in audit_trail(world) if trace.event == "code.replayed"]
    assert len(replayed) == 1
    assert replayed[0].company_id == world.company_a
    assert replayed[0].application_id == world.app.id
    assert replayed[0].actor_user_id == world.employee.id


def test_a_replay_revokes_a_company_token_that_never_expires(
    client: TestClient, world: World
) -> None:
    """RFC 6749 §4.1.2: company tokens have no expiry, so revocation on replay is the only
    thing that ends a company token minted from a leaked code."""
    code = obtain_code(client, world, resource_owner_type="company")
    token = exchange(client, world.app, code).json()["access_token"]
    oauth_error(exchange(client, world.app, code), 400, "invalid_grant")
    assert me(client, token) == 401
    assert "code.replayed" in [trace.event for trace in audit_trail(world)]


def test_a_replay_by_another_client_revokes_nothing(client: TestClient, world: World) -> None:
    """RFC 6749 §4.1.3, RFC 9700 §4.5: a client that was never issued the code cannot use a
    replay to revoke someone else's tokens (a denial of service), and learns nothing."""
    code = obtain_code(client, world)
    tokens = exchange(client, world.app, code).json()
    oauth_error(exchange(client, world.other_app, code), 400, "invalid_grant")
    assert me(client, tokens["access_token"]) == 200
    assert "code.replayed" not in [trace.event for trace in audit_trail(world)]


def test_every_replay_after_the_first_fails_too(client: TestClient, world: World) -> None:
    """RFC 6749 §4.1.2: "MUST NOT use the authorization code more than once" — however many
    times it is presented, and each presentation is recorded."""
    code = obtain_code(client, world)
    assert exchange(client, world.app, code).status_code == 200
    for _ in range(3):
        oauth_error(exchange(client, world.app, code), 400, "invalid_grant")
    assert [trace.event for trace in audit_trail(world)].count("code.replayed") == 3


@pytest.mark.parametrize(("age", "works"), [(599, True), (600, False), (3600, False)])
def test_a_code_lives_ten_minutes_at_most(
    client: TestClient, world: World, clock: FrozenClock, age: int, works: bool
) -> None:
    """RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is
    RECOMMENDED"; RFC 9700 §4.5: a short life limits what a leaked code is worth."""
    code = obtain_code(client, world)
    clock.advance(age)
    response = exchange(client, world.app, code)
    if works:
        assert response.status_code == 200, response.text
    else:
        oauth_error(response, 400, "invalid_grant")


def test_the_code_lifetime_cannot_be_configured_above_ten_minutes(tmp_path) -> None:
    """RFC 6749 §4.1.2: an operator cannot weaken the bound by configuration."""
    with pytest.raises(ValidationError):
        Settings(authorization_code_lifetime=601, data_dir=tmp_path)


def test_a_shorter_configured_lifetime_is_enforced(
    world: World, tmp_path, clock: FrozenClock
) -> None:
    """RFC 6749 §4.1.2: ``GRANTLY_AUTHORIZATION_CODE_LIFETIME`` shortens the life of codes."""
    settings = make_settings(
        tmp_path, database_url=world.settings.database_url, authorization_code_lifetime=60
    )
    app = create_app(settings, clock=clock)
    with TestClient(app, base_url="http://127.0.0.1:8000", follow_redirects=False) as http:
        code = obtain_code(http, world)
        clock.advance(60)
        oauth_error(exchange(http, world.app, code), 400, "invalid_grant")
