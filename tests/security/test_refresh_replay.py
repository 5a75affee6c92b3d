"""Threat: refresh token theft and replay (RFC 9700 §2.2.2, §4.14; RFC 6749 §10.4).

A refresh token stolen from a client (its storage, a log, a backup) is used by the attacker.
Refresh tokens rotate, so the theft shows as soon as the stolen token and its successor are
both presented: whichever comes second, the whole grant ("family") is revoked — the
attacker's fresh tokens included — and a ``refresh_token.reused`` event is written for the
company's admins.

Covered elsewhere: concurrent reuse of one refresh token (``tests/test_races.py``,
``tests/test_across_processes.py``), widening the scope on refresh
(``tests/web/test_token_endpoint.py::test_refresh_may_narrow_the_scope_but_not_widen_it``).
Each replay below happens ten minutes after the rotation, outside any grace period an
operator may configure for lost responses.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from grantly.app import create_app
from grantly.oauth.clock import FrozenClock
from tests.conftest import (
    Client,
    World,
    exchange,
    make_settings,
    obtain_code,
)
from tests.security.conftest import (
    audit_trail,
    basic,
    me,
    oauth_error,
    public_tokens,
    refresh,
)

LATER = 600  # seconds between the rotation and the replay


def _grant(client: TestClient, world: World) -> dict[str, Any]:
    response = exchange(client, world.app, obtain_code(client, world, world.employee))
    assert response.status_code == 200, response.text
    return dict(response.json())


def _reuse_traces(world: World) -> list[Any]:
    return [trace for trace in audit_trail(world) if trace.event == "refresh_token.reused"]


def test_each_refresh_rotates_and_the_old_token_is_spent(client: TestClient, world: World) -> None:
    """RFC 9700 §4.14.2 (rotation): each refresh returns a new refresh token; the presented
    one is spent."""
    first = _grant(client, world)
    second = refresh(client, world.app, first["refresh_token"]).json()
    third = refresh(client, world.app, second["refresh_token"]).json()
    tokens = {first["refresh_token"], second["refresh_token"], third["refresh_token"]}
    assert len(tokens) == 3
    assert me(client, third["access_token"]) == 200


def test_a_thief_replaying_a_rotated_token_kills_the_whole_family(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    """RFC 9700 §4.14.2: the client refreshed; the attacker later presents the stolen (now
    rotated) token. Refused, and the client's current access and refresh tokens are revoked
    with it; the reuse is audited with the company, application and user."""
    stolen = _grant(client, world)
    current = refresh(client, world.app, stolen["refresh_token"]).json()
    clock.advance(LATER)

    oauth_error(refresh(client, world.app, stolen["refresh_token"]), 400, "invalid_grant")

    assert me(client, current["access_token"]) == 401
    oauth_error(refresh(client, world.app, current["refresh_token"]), 400, "invalid_grant")
    [trace] = _reuse_traces(world)
    assert (trace.company_id, trace.application_id, trace.actor_user_id) == (
        world.company_a,
        world.app.id,
        world.employee.id,
    )


def test_a_thief_who_refreshes_first_loses_everything_when_the_client_comes_back(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    """RFC 9700 §4.14.2: the attacker refreshes first and gets fresh tokens; when the
    legitimate client then presents its (now rotated) token, the family is revoked, so the
    attacker's fresh tokens die too. The server cannot tell who is who — it revokes both."""
    victims = _grant(client, world)
    attackers = refresh(client, world.app, victims["refresh_token"]).json()
    assert me(client, attackers["access_token"]) == 200
    clock.advance(LATER)

    oauth_error(refresh(client, world.app, victims["refresh_token"]), 400, "invalid_grant")

    assert me(client, attackers["access_token"]) == 401
    oauth_error(refresh(client, world.app, attackers["refresh_token"]), 400, "invalid_grant")
    assert len(_reuse_traces(world)) == 1


def test_reuse_of_an_older_ancestor_also_revokes_the_family(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    """RFC 9700 §4.14.2: the family is the whole chain since the authorization, not just the
    last link: replaying the first refresh token after two rotations still revokes it all."""
    first = _grant(client, world)
    second = refresh(client, world.app, first["refresh_token"]).json()
    third = refresh(client, world.app, second["refresh_token"]).json()
    clock.advance(LATER)
    oauth_error(refresh(client, world.app, first["refresh_token"]), 400, "invalid_grant")
    assert me(client, third["access_token"]) == 401
    assert me(client, second["access_token"]) == 401


def test_another_client_cannot_use_or_burn_a_stolen_refresh_token(
    client: TestClient, world: World
) -> None:
    """RFC 6749 §6 / RFC 9700 §4.14: a refresh token is bound to its client. Company B's
    application, authenticated, gets ``invalid_grant`` — and its attempt neither rotates nor
    revokes the victim's grant (no denial of service, no false reuse event)."""
    victims = _grant(client, world)
    response = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": victims["refresh_token"]},
        auth=basic(world.other_app),
    )
    oauth_error(response, 400, "invalid_grant")
    assert me(client, victims["access_token"]) == 200
    assert refresh(client, world.app, victims["refresh_token"]).status_code == 200
    assert _reuse_traces(world) == []


def test_a_public_clients_refresh_tokens_rotate_with_reuse_detection(
    client: TestClient, world: World, public_app: Client, clock: FrozenClock
) -> None:
    """RFC 9700 §4.14.2: "refresh tokens for public clients MUST be sender-constrained or use
    refresh token rotation" — a public client (no secret to steal alongside) is the case the
    rule is for."""
    stolen, _code, _verifier = public_tokens(client, world, public_app)

    def public_refresh(token: str):
        return client.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": token,
                "client_id": public_app.client_id,
            },
        )

    current = public_refresh(stolen["refresh_token"]).json()
    assert current["refresh_token"] != stolen["refresh_token"]
    clock.advance(LATER)
    oauth_error(public_refresh(stolen["refresh_token"]), 400, "invalid_grant")
    assert me(client, current["access_token"]) == 401
    [trace] = _reuse_traces(world)
    assert trace.application_id == public_app.id


def test_a_refresh_token_of_a_grant_the_person_revoked_is_dead(
    client: TestClient, world: World
) -> None:
    """RFC 9700 §4.14.2 ("refresh tokens ... revoked if the user revokes the grant"), RFC 7009:
    after the person revokes the application on /oauth/authorized_applications, the stolen
    refresh token gets nothing."""
    from tests.conftest import csrf_of

    tokens = _grant(client, world)
    page = client.get("/oauth/authorized_applications")
    action = page.text.split('action="/oauth/authorized_applications/')[1].split('"')[0]
    client.post(
        f"/oauth/authorized_applications/{action}",
        data={"csrf_token": csrf_of(page.text), "confirmed": "yes"},
    )
    oauth_error(refresh(client, world.app, tokens["refresh_token"]), 400, "invalid_grant")


def test_a_grace_retry_by_a_thief_does_not_fork_the_grant(
    world: World, tmp_path, clock: FrozenClock
) -> None:
    """RFC 9700 §4.14.2: rotation lets the server notice that two parties hold one grant.
    With the optional grace period on (off by default), the client refreshes, a thief retries
    the stolen token within the grace period; afterwards the client and the thief must not
    both be able to go on refreshing — the family has to stay a single line."""
    settings = make_settings(
        tmp_path, database_url=world.settings.database_url, refresh_token_grace_period=60
    )
    with TestClient(
        create_app(settings, clock=clock), base_url="http://127.0.0.1:8000", follow_redirects=False
    ) as http:
        stolen = _grant(http, world)["refresh_token"]
        clients = refresh(http, world.app, stolen).json()["refresh_token"]
        clock.advance(5)
        thiefs = refresh(http, world.app, stolen).json()["refresh_token"]
        clock.advance(600)
        client_goes_on = refresh(http, world.app, clients)
        thief_goes_on = refresh(http, world.app, thiefs)
        assert not (client_goes_on.status_code == thief_goes_on.status_code == 200)
