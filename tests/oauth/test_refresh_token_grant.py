"""The refresh token grant: RFC 6749 §6, with rotation per RFC 9700 §4.14.2.

§6: the refresh token must have been issued to the authenticated client; a requested scope
"MUST NOT include any scope not originally granted" and, if a new refresh token is issued, "the
refresh token scope MUST be identical to that of the refresh token included by the client in
the request". RFC 9700 §4.14.2: refresh tokens rotate, and a refresh token presented again after
it was rotated reveals a breach, so the whole grant is revoked. §5.2: failures are
``invalid_grant`` (``invalid_scope`` for scope).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from grantly.oauth.errors import InvalidGrant, InvalidScope, InvalidToken, OAuthError
from grantly.oauth.models import TokenResponse
from grantly.oauth.secrets import digest
from grantly.oauth.token import token_request
from tests.oauth.memory import run
from tests.oauth.support import USER_TOKEN_KEYS, Server, params

WEEK = 7 * 24 * 3600


def invalid_grant(server: Server, refresh_token: str | None, **overrides: str) -> InvalidGrant:
    with pytest.raises(InvalidGrant) as caught:
        server.refresh(refresh_token, **overrides)
    assert (caught.value.error, caught.value.status) == ("invalid_grant", 400)
    return caught.value


def test_a_refresh_returns_a_new_access_token_and_a_new_refresh_token(server: Server) -> None:
    first = server.tokens_for()
    second = server.refresh(first.refresh_token)
    assert set(second.body()) == USER_TOKEN_KEYS
    assert second.access_token != first.access_token
    assert second.refresh_token not in (None, first.refresh_token)


def test_the_refreshed_access_token_keeps_the_owner_and_the_scopes(server: Server) -> None:
    first = server.tokens_for()
    record = server.bearer(server.refresh(first.refresh_token).access_token)
    assert (record.owner, record.scopes) == (server.bearer(first.access_token).owner, first.scopes)


def test_the_refreshed_response_is_dated_now(server: Server) -> None:
    first = server.tokens_for()
    server.clock.advance(1800)
    assert server.refresh(first.refresh_token).body()["created_at"] == server.clock.now()


def test_the_rotated_refresh_token_can_be_refreshed_in_turn(server: Server) -> None:
    second = server.refresh(server.tokens_for().refresh_token)
    assert server.refresh(second.refresh_token).access_token


def test_a_refresh_token_cannot_be_used_twice(server: Server) -> None:
    first = server.tokens_for()
    server.refresh(first.refresh_token)
    assert "already used" in invalid_grant(server, first.refresh_token).description


def test_a_reused_refresh_token_revokes_the_access_token_of_its_successor(server: Server) -> None:
    first = server.tokens_for()
    second = server.refresh(first.refresh_token)
    invalid_grant(server, first.refresh_token)
    with pytest.raises(InvalidToken):
        server.bearer(second.access_token)


def test_a_reused_refresh_token_revokes_its_successor(server: Server) -> None:
    first = server.tokens_for()
    second = server.refresh(first.refresh_token)
    invalid_grant(server, first.refresh_token)
    assert "revoked" in invalid_grant(server, second.refresh_token).description


def test_a_reused_refresh_token_revokes_the_original_access_token(server: Server) -> None:
    first = server.tokens_for()
    server.refresh(first.refresh_token)
    invalid_grant(server, first.refresh_token)
    assert not server.access_is_active(first.access_token)


def test_a_reused_refresh_token_leaves_other_grants_of_the_user_alone(server: Server) -> None:
    other = server.tokens_for()
    first = server.tokens_for()
    server.refresh(first.refresh_token)
    invalid_grant(server, first.refresh_token)
    assert server.bearer(other.access_token)


def test_a_missing_refresh_token_is_an_invalid_request(server: Server) -> None:
    with pytest.raises(OAuthError) as caught:
        server.refresh(None)
    assert (caught.value.error, caught.value.status) == ("invalid_request", 400)
    assert "'refresh_token'" in caught.value.description


def test_an_unknown_refresh_token_is_an_invalid_grant(server: Server) -> None:
    assert "invalid" in invalid_grant(server, "grt_made-up").description


def test_an_access_token_is_not_a_refresh_token(server: Server) -> None:
    invalid_grant(server, server.tokens_for().access_token)


def test_a_refresh_token_of_another_client_is_an_invalid_grant(server: Server) -> None:
    token = server.tokens_for(server.reader_app)
    invalid_grant(server, token.refresh_token)


def test_a_refresh_token_presented_by_another_client_stays_usable_by_its_own(
    server: Server,
) -> None:
    token = server.tokens_for(server.reader_app)
    invalid_grant(server, token.refresh_token)
    assert server.refresh(token.refresh_token, server.reader_app).access_token


def test_a_refresh_token_is_accepted_until_just_before_it_expires(server: Server) -> None:
    token = server.tokens_for()
    server.clock.advance(WEEK - 1)
    assert server.refresh(token.refresh_token).access_token


def test_a_refresh_token_is_refused_once_its_lifetime_has_passed(server: Server) -> None:
    token = server.tokens_for()
    server.clock.advance(WEEK)
    assert "expired" in invalid_grant(server, token.refresh_token).description


def test_a_public_client_refreshes_with_its_client_id_alone(server: Server) -> None:
    token = server.tokens_for(server.native_app)
    assert server.refresh(token.refresh_token, server.native_app).access_token


def test_a_confidential_client_must_authenticate_to_refresh(server: Server) -> None:
    token = server.tokens_for()
    with pytest.raises(OAuthError) as caught:
        server.refresh(token.refresh_token, client_secret=None)
    assert (caught.value.error, caught.value.status) == ("invalid_client", 401)


def test_a_refresh_may_narrow_the_scope(server: Server) -> None:
    token = server.refresh(server.tokens_for().refresh_token, scope="read")
    assert token.body()["scope"] == "read"
    assert server.bearer(token.access_token).scopes == ("read",)


def test_a_refresh_may_ask_for_the_same_scope_with_commas_in_any_order(server: Server) -> None:
    token = server.refresh(server.tokens_for().refresh_token, scope="write,read")
    assert token.scopes == ("read", "write")


def test_a_refresh_may_not_widen_the_scope(server: Server) -> None:
    first = server.exchange(server.code(scope="read"))
    with pytest.raises(InvalidScope) as caught:
        server.refresh(first.refresh_token, scope="read write")
    assert (caught.value.error, caught.value.status) == ("invalid_scope", 400)
    assert "write" in caught.value.description


def test_a_refused_widening_does_not_use_up_the_refresh_token(server: Server) -> None:
    first = server.exchange(server.code(scope="read"))
    with pytest.raises(InvalidScope):
        server.refresh(first.refresh_token, scope="write")
    assert server.refresh(first.refresh_token).scopes == ("read",)


def test_a_narrowed_refresh_keeps_the_full_scope_on_the_new_refresh_token(
    server: Server,
) -> None:
    narrowed = server.refresh(server.tokens_for().refresh_token, scope="read")
    assert narrowed.refresh_token is not None
    record = run(server.tokens.refresh_token(digest(narrowed.refresh_token)))
    assert record is not None
    assert record.scopes == ("read", "write")


def test_a_refresh_of_a_since_deactivated_user_is_an_invalid_grant(server: Server) -> None:
    token = server.tokens_for()
    server.db.deactivate(server.employee.id)
    assert "no longer active" in invalid_grant(server, token.refresh_token).description


def test_a_refused_refresh_of_a_deactivated_user_does_not_revoke_anything(
    server: Server,
) -> None:
    token = server.tokens_for()
    server.db.deactivate(server.employee.id)
    invalid_grant(server, token.refresh_token)
    assert server.db.refresh_tokens[digest(token.refresh_token or "")].rotated_at is None


def test_a_company_grant_has_no_refresh_token_to_refresh(server: Server) -> None:
    token = server.exchange(server.code(user=server.admin, resource_owner_type="company"))
    assert token.refresh_token is None
    assert server.db.refresh_tokens == {}


def test_each_rotation_starts_a_new_refresh_lifetime(server: Server) -> None:
    token = server.tokens_for()
    server.clock.advance(WEEK - 1)
    renewed = server.refresh(token.refresh_token)
    server.clock.advance(WEEK - 1)
    assert server.refresh(renewed.refresh_token).access_token


def _race(server: Server, refresh_token: str | None) -> list[TokenResponse | BaseException]:
    body = params(
        grant_type="refresh_token",
        refresh_token=refresh_token,
        client_id="web-client",
        client_secret=server.secrets["web-client"],
    )

    async def both() -> list[TokenResponse | BaseException]:
        return list(
            await asyncio.gather(
                token_request(body, None, server.context),
                token_request(body, None, server.context),
                return_exceptions=True,
            )
        )

    return run(both())


def test_of_two_concurrent_refreshes_with_one_token_exactly_one_succeeds(server: Server) -> None:
    outcomes = _race(server, server.tokens_for().refresh_token)
    assert sorted(type(o).__name__ for o in outcomes) == ["InvalidGrant", "TokenResponse"]


def test_a_refresh_token_presented_twice_concurrently_revokes_the_grant(server: Server) -> None:
    outcomes = _race(server, server.tokens_for().refresh_token)
    winner = next(o for o in outcomes if isinstance(o, TokenResponse))
    assert not server.access_is_active(winner.access_token)


# The grace period (``refresh_token_grace_period``): RFC 9700 §4.14.2 lets an authorization
# server trade some reuse detection for robustness; a client that lost the response to its
# refresh may present the same refresh token again for a few seconds.

GRACE = 30


def with_grace(server: Server, seconds: int = GRACE) -> Server:
    server.policy = replace(server.policy, refresh_token_grace_period=seconds)
    server.context = replace(server.context, policy=server.policy)
    return server


def test_without_a_grace_period_an_immediate_retry_is_a_reuse(server: Server) -> None:
    first = server.tokens_for()
    server.refresh(first.refresh_token)
    assert invalid_grant(server, first.refresh_token).event is not None


def test_a_retry_within_the_grace_period_gets_a_working_new_pair(server: Server) -> None:
    with_grace(server)
    first = server.tokens_for()
    lost = server.refresh(first.refresh_token)
    server.clock.advance(GRACE)
    retried = server.refresh(first.refresh_token)
    assert retried.grace_retry and not lost.grace_retry
    assert retried.refresh_token not in (lost.refresh_token, first.refresh_token)
    assert server.access_is_active(retried.access_token)
    assert not server.access_is_active(lost.access_token)  # replaced: the grant does not fork
    invalid_grant(server, lost.refresh_token)
    assert server.refresh(retried.refresh_token).access_token


def test_a_retry_after_the_successor_was_used_is_a_reuse_even_within_the_grace_period(
    server: Server,
) -> None:
    with_grace(server)
    first = server.tokens_for()
    second = server.refresh(first.refresh_token)
    third = server.refresh(second.refresh_token)
    assert invalid_grant(server, first.refresh_token).event is not None
    assert not server.access_is_active(third.access_token)


def test_a_retry_after_the_grace_period_is_a_reuse_that_revokes_everything(
    server: Server,
) -> None:
    with_grace(server)
    first = server.tokens_for()
    server.refresh(first.refresh_token)
    retried = server.refresh(first.refresh_token)
    server.clock.advance(GRACE + 1)
    assert invalid_grant(server, first.refresh_token).event is not None
    assert not server.access_is_active(retried.access_token)
    invalid_grant(server, retried.refresh_token)


def test_a_grace_retry_of_a_revoked_grant_is_refused(server: Server) -> None:
    with_grace(server)
    first = server.tokens_for()
    second = server.refresh(first.refresh_token)
    server.clock.advance(GRACE + 1)
    invalid_grant(server, first.refresh_token)  # a reuse: the grant is revoked
    server.clock.advance(-GRACE)
    assert "revoked" in invalid_grant(server, second.refresh_token).description


def test_a_grace_retry_still_may_not_widen_the_scope(server: Server) -> None:
    with_grace(server)
    first = server.exchange(server.code(scope="read"))
    server.refresh(first.refresh_token)
    with pytest.raises(InvalidScope):
        server.refresh(first.refresh_token, scope="read write")


def test_with_a_grace_period_concurrent_refreshes_all_succeed_and_one_pair_stays_live(
    server: Server,
) -> None:
    with_grace(server)
    outcomes = _race(server, server.tokens_for().refresh_token)
    assert all(isinstance(o, TokenResponse) for o in outcomes), outcomes
    live = [o for o in outcomes if server.access_is_active(o.access_token)]  # type: ignore[union-attr]
    assert len(live) == 1
