"""The authorization code grant's token request: RFC 6749 §4.1.3, §4.1.4 and §5.

§4.1.2: a code is used at most once; "If an authorization code is used more than once, the
authorization server MUST deny the request and SHOULD revoke (when possible) all tokens
previously issued based on that authorization code" (also RFC 9700 §4.2.4). §4.1.3: the code
must have been issued to the authenticated client, and redirect_uri must be present and
identical when the authorization request included it. §5.2: failures are ``invalid_grant``.
RFC 7636 §4.5, §4.6: the code_verifier must match the challenge.
"""

from __future__ import annotations

import asyncio

import pytest

from grantly.oauth.errors import InvalidGrant, InvalidToken, OAuthError
from grantly.oauth.models import Application, ResourceOwner, TokenResponse
from grantly.oauth.secrets import digest
from grantly.oauth.token import token_request
from tests.oauth.memory import run
from tests.oauth.support import (
    CODE_LIFETIME,
    COMPANY_TOKEN_KEYS,
    OTHER_REDIRECT_URI,
    REDIRECT_URI,
    RFC7636_CHALLENGE,
    RFC7636_VERIFIER,
    USER_TOKEN_KEYS,
    Server,
    basic,
    params,
)

YEAR = 365 * 24 * 3600


def invalid_grant(
    server: Server, code: str, application: Application | None = None, **overrides: str | None
) -> InvalidGrant:
    with pytest.raises(InvalidGrant) as caught:
        server.exchange(code, application, **overrides)
    assert (caught.value.error, caught.value.status, caught.value.redirectable) == (
        "invalid_grant",
        400,
        False,
    )
    return caught.value


# Success.


def test_a_code_exchanges_for_a_user_token_response(server: Server) -> None:
    body = server.exchange(server.code()).body()
    assert set(body) == USER_TOKEN_KEYS
    assert (body["token_type"], body["expires_in"], body["scope"], body["created_at"]) == (
        "Bearer",
        3600,
        "read write",
        server.clock.now(),
    )


def test_the_issued_access_token_acts_as_the_user_with_the_granted_scopes(server: Server) -> None:
    token = server.exchange(server.code(scope="read"))
    record = server.bearer(token.access_token)
    assert (record.client_id, record.owner, record.scopes) == (
        "web-client",
        ResourceOwner.for_user(server.employee),
        ("read",),
    )


def test_issued_tokens_are_stored_only_as_digests(server: Server) -> None:
    token = server.exchange(server.code())
    assert token.refresh_token is not None
    assert list(server.db.access_tokens) == [digest(token.access_token)]
    assert list(server.db.refresh_tokens) == [digest(token.refresh_token)]


def test_issued_tokens_carry_distinguishable_prefixes(server: Server) -> None:
    token = server.exchange(server.code())
    assert token.access_token.startswith("gat_")
    assert (token.refresh_token or "").startswith("grt_")


def test_a_code_can_be_exchanged_with_http_basic(server: Server) -> None:
    body = {"grant_type": "authorization_code", "code": server.code(), "redirect_uri": REDIRECT_URI}
    token = server.token(basic("web-client", server.secrets["web-client"]), **body)
    assert token.refresh_token is not None


# Single use.


def test_a_code_cannot_be_used_twice(server: Server) -> None:
    code = server.code()
    server.exchange(code)
    error = invalid_grant(server, code)
    assert "already used" in error.description


def test_a_replayed_code_revokes_the_access_token_issued_from_it(server: Server) -> None:
    code = server.code()
    first = server.exchange(code)
    invalid_grant(server, code)
    with pytest.raises(InvalidToken):
        server.bearer(first.access_token)


def test_a_replayed_code_revokes_the_refresh_token_issued_from_it(server: Server) -> None:
    code = server.code()
    first = server.exchange(code)
    invalid_grant(server, code)
    with pytest.raises(InvalidGrant) as caught:
        server.refresh(first.refresh_token)
    assert "revoked" in caught.value.description


def test_a_replayed_code_revokes_the_tokens_refreshed_from_it(server: Server) -> None:
    code = server.code()
    refreshed = server.refresh(server.exchange(code).refresh_token)
    invalid_grant(server, code)
    assert not server.access_is_active(refreshed.access_token)


def test_a_replayed_code_leaves_other_grants_alone(server: Server) -> None:
    other = server.exchange(server.code())
    code = server.code()
    server.exchange(code)
    invalid_grant(server, code)
    assert server.bearer(other.access_token).scopes == ("read", "write")


def test_a_used_public_code_replayed_without_its_verifier_revokes_nothing(
    server: Server,
) -> None:
    """Doorkeeper's order: possession first. A leaked, used code of a public client is not
    enough to revoke its owner's tokens; the one who holds the verifier too is the one who
    redeemed it (or its thief), and then the grant is revoked."""
    code = server.code(
        server.native_app, code_challenge=RFC7636_CHALLENGE, code_challenge_method="S256"
    )
    first = server.exchange(code, server.native_app)
    for verifier in (None, "x" * 43):
        error = invalid_grant(server, code, server.native_app, code_verifier=verifier)
        assert error.event is None  # not a replay: not audited as one
        assert server.access_is_active(first.access_token)
    error = invalid_grant(server, code, server.native_app)  # with the verifier
    assert error.event is not None and error.event.name == "code.replayed"
    assert not server.access_is_active(first.access_token)


def test_a_used_code_replayed_with_another_redirect_uri_revokes_nothing(server: Server) -> None:
    code = server.code()
    first = server.exchange(code)
    invalid_grant(server, code, redirect_uri=OTHER_REDIRECT_URI)
    assert server.access_is_active(first.access_token)
    invalid_grant(server, code)
    assert not server.access_is_active(first.access_token)


def test_of_two_concurrent_redemptions_of_a_code_exactly_one_succeeds(server: Server) -> None:
    code = server.code()
    body = params(
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT_URI,
        client_id="web-client",
        client_secret=server.secrets["web-client"],
    )

    async def race() -> list[TokenResponse | BaseException]:
        return list(
            await asyncio.gather(
                token_request(body, None, server.context),
                token_request(body, None, server.context),
                return_exceptions=True,
            )
        )

    outcomes = run(race())
    assert sorted(type(o).__name__ for o in outcomes) == ["InvalidGrant", "TokenResponse"]


# Unknown, expired, or someone else's code.


def test_an_unknown_code_is_an_invalid_grant(server: Server) -> None:
    error = invalid_grant(server, "gac_made-up")
    assert error.description == "the authorization code is invalid."


def test_a_missing_code_is_an_invalid_request(server: Server) -> None:
    with pytest.raises(OAuthError) as caught:
        server.token(
            grant_type="authorization_code",
            redirect_uri=REDIRECT_URI,
            **server.client_auth(server.web_app),
        )
    assert (caught.value.error, caught.value.status) == ("invalid_request", 400)
    assert "'code'" in caught.value.description


def test_an_empty_code_is_treated_as_missing(server: Server) -> None:
    with pytest.raises(OAuthError) as caught:
        server.exchange("")
    assert caught.value.error == "invalid_request"


def test_a_code_is_accepted_until_just_before_it_expires(server: Server) -> None:
    code = server.code()
    server.clock.advance(CODE_LIFETIME - 1)
    assert server.exchange(code).access_token


def test_a_code_is_refused_once_its_lifetime_has_passed(server: Server) -> None:
    code = server.code()
    server.clock.advance(CODE_LIFETIME)
    assert "expired" in invalid_grant(server, code).description


def test_a_code_issued_to_another_client_is_an_invalid_grant(server: Server) -> None:
    code = server.code(server.reader_app)
    error = invalid_grant(server, code)
    assert "another client" in error.description


def test_a_public_client_cannot_redeem_a_confidential_clients_code(server: Server) -> None:
    code = server.code()
    with pytest.raises(InvalidGrant):
        server.exchange(code, server.native_app, redirect_uri=REDIRECT_URI, code_verifier=None)


# The redirect_uri rule of §4.1.3.


def test_redirect_uri_is_required_when_the_authorization_request_had_one(server: Server) -> None:
    error = invalid_grant(server, server.code(), redirect_uri=None)
    assert "redirect_uri is required" in error.description


def test_redirect_uri_must_be_identical_to_the_authorization_requests(server: Server) -> None:
    error = invalid_grant(server, server.code(), redirect_uri=OTHER_REDIRECT_URI)
    assert "does not match" in error.description


def test_redirect_uri_differing_by_a_trailing_slash_is_refused(server: Server) -> None:
    invalid_grant(server, server.code(), redirect_uri=REDIRECT_URI + "/")


def test_redirect_uri_may_be_omitted_when_the_authorization_request_omitted_it(
    server: Server,
) -> None:
    code = server.code(server.reader_app, redirect_uri=None)
    token = server.exchange(code, server.reader_app, redirect_uri=None)
    assert token.scopes == ("read",)


def test_a_redirect_uri_sent_anyway_must_be_the_one_the_code_was_issued_for(
    server: Server,
) -> None:
    code = server.code(server.reader_app, redirect_uri=None)
    with pytest.raises(InvalidGrant):
        server.exchange(code, server.reader_app, redirect_uri="https://client.example/else")


def test_a_redirect_uri_sent_anyway_that_matches_is_accepted(server: Server) -> None:
    code = server.code(server.reader_app, redirect_uri=None)
    assert server.exchange(code, server.reader_app, redirect_uri=REDIRECT_URI).access_token


# PKCE.


def test_the_rfc_7636_appendix_b_pair_redeems_a_public_clients_code(server: Server) -> None:
    code = server.code(server.native_app, code_challenge=RFC7636_CHALLENGE)
    token = server.exchange(code, server.native_app, code_verifier=RFC7636_VERIFIER)
    assert set(token.body()) == USER_TOKEN_KEYS


def test_a_wrong_code_verifier_is_an_invalid_grant(server: Server) -> None:
    code = server.code(server.native_app)
    with pytest.raises(InvalidGrant) as caught:
        server.exchange(code, server.native_app, code_verifier="x" * 43)
    assert "does not match" in caught.value.description


def test_a_missing_code_verifier_is_an_invalid_grant(server: Server) -> None:
    code = server.code(server.native_app)
    with pytest.raises(InvalidGrant):
        server.exchange(code, server.native_app, code_verifier=None)


def test_a_code_verifier_for_a_code_issued_without_pkce_is_an_invalid_grant(
    server: Server,
) -> None:
    invalid_grant(server, server.code(), code_verifier=RFC7636_VERIFIER)


def test_a_confidential_client_that_used_pkce_must_send_the_verifier(server: Server) -> None:
    code = server.code(code_challenge=RFC7636_CHALLENGE, code_challenge_method="S256")
    invalid_grant(server, code)


def test_a_code_refused_for_a_wrong_verifier_cannot_be_retried(server: Server) -> None:
    code = server.code(server.native_app)
    with pytest.raises(InvalidGrant):
        server.exchange(code, server.native_app, code_verifier="x" * 43)
    with pytest.raises(InvalidGrant):
        server.exchange(code, server.native_app)


# The resource owner.


def test_a_code_of_a_since_deactivated_user_is_an_invalid_grant(server: Server) -> None:
    code = server.code()
    server.db.deactivate(server.employee.id)
    assert "no longer active" in invalid_grant(server, code).description


def test_a_company_code_yields_a_token_without_expiry_or_refresh_token(server: Server) -> None:
    code = server.code(user=server.admin, resource_owner_type="company")
    body = server.exchange(code).body()
    assert set(body) == COMPANY_TOKEN_KEYS
    assert body["token_type"] == "Bearer"


def test_a_company_token_does_not_expire(server: Server) -> None:
    token = server.exchange(server.code(user=server.admin, resource_owner_type="company"))
    server.clock.advance(10 * YEAR)
    assert server.bearer(token.access_token).owner.type == "company"


def test_a_company_code_survives_the_deactivation_of_the_admin_who_authorized_it(
    server: Server,
) -> None:
    code = server.code(user=server.admin, resource_owner_type="company")
    server.db.deactivate(server.admin.id)
    assert server.exchange(code).access_token


def test_a_replayed_company_code_revokes_the_company_token(server: Server) -> None:
    code = server.code(user=server.admin, resource_owner_type="company")
    token = server.exchange(code)
    invalid_grant(server, code)
    assert not server.access_is_active(token.access_token)
