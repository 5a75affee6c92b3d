"""Bearer tokens at the resource API: RFC 6750 §2.1 and §3.1.

§2.1: ``Authorization: Bearer <token>``. §3.1: a request without authentication information
gets a challenge without an error code; a malformed request is ``invalid_request`` (400); an
expired, revoked or otherwise invalid token is ``invalid_token`` (401); a token without the
needed scope is ``insufficient_scope`` (403). RFC 7662 §2.2 for what "active" means.
"""

from __future__ import annotations

import pytest

from grantly.oauth import bearer
from grantly.oauth.bearer import MissingToken
from grantly.oauth.errors import InsufficientScope, InvalidGrant, InvalidRequest, InvalidToken
from grantly.oauth.models import ResourceOwner
from tests.oauth.support import Server


def invalid_token(server: Server, token: str | None) -> InvalidToken:
    with pytest.raises(InvalidToken) as caught:
        server.bearer(token)
    assert (caught.value.error, caught.value.status) == ("invalid_token", 401)
    return caught.value


# The header.


def test_the_token_is_read_from_a_bearer_authorization_header() -> None:
    assert bearer.token_from_header("Bearer gat_abc") == "gat_abc"


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_the_bearer_scheme_is_case_insensitive(scheme: str) -> None:
    assert bearer.token_from_header(f"{scheme} gat_abc") == "gat_abc"


def test_b64token_characters_are_kept() -> None:
    assert bearer.token_from_header("Bearer a-b.c_d~e+f/g==") == "a-b.c_d~e+f/g=="


def test_white_space_around_the_token_is_ignored() -> None:
    assert bearer.token_from_header("Bearer   gat_abc  ") == "gat_abc"


def test_no_authorization_header_means_no_token() -> None:
    assert bearer.token_from_header(None) is None


def test_another_authentication_scheme_means_no_token() -> None:
    assert bearer.token_from_header("Basic d2ViOnNlY3JldA==") is None


def test_a_bearer_header_without_a_token_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest) as caught:
        bearer.token_from_header("Bearer ")
    assert (caught.value.error, caught.value.status) == ("invalid_request", 400)
    assert "Bearer <token>" in caught.value.description


def test_a_bare_bearer_scheme_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        bearer.token_from_header("Bearer")


def test_a_bearer_header_with_two_tokens_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        bearer.token_from_header("Bearer gat_abc gat_def")


# The token.


def test_a_missing_token_is_answered_without_blaming_a_token(server: Server) -> None:
    with pytest.raises(MissingToken) as caught:
        server.bearer(None)
    assert caught.value.status == 401
    assert "Authorization: Bearer" in caught.value.description


def test_a_valid_token_is_accepted_with_its_client_owner_and_scopes(server: Server) -> None:
    record = server.bearer(server.tokens_for().access_token)
    assert (record.client_id, record.owner, record.scopes) == (
        "web-client",
        ResourceOwner.for_user(server.employee),
        ("read", "write"),
    )


def test_an_unknown_token_is_invalid(server: Server) -> None:
    invalid_token(server, "gat_made-up")


def test_a_refresh_token_is_not_an_access_token(server: Server) -> None:
    invalid_token(server, server.tokens_for().refresh_token)


def test_a_token_is_accepted_until_just_before_it_expires(server: Server) -> None:
    token = server.tokens_for()
    server.clock.advance(3599)
    assert server.bearer(token.access_token)


def test_a_token_is_invalid_once_its_lifetime_has_passed(server: Server) -> None:
    token = server.tokens_for()
    server.clock.advance(3600)
    invalid_token(server, token.access_token)


def test_a_revoked_token_is_invalid(server: Server) -> None:
    code = server.code()
    token = server.exchange(code)
    with pytest.raises(InvalidGrant):
        server.exchange(code)  # the replay revokes the grant
    invalid_token(server, token.access_token)


def test_a_deactivated_users_token_stops_at_once(server: Server) -> None:
    token = server.tokens_for()
    server.db.deactivate(server.employee.id)
    invalid_token(server, token.access_token)


def test_a_company_token_outlives_the_deactivation_of_the_admin_who_authorized_it(
    server: Server,
) -> None:
    token = server.exchange(server.code(user=server.admin, resource_owner_type="company"))
    server.db.deactivate(server.admin.id)
    assert server.bearer(token.access_token).owner.type == "company"


def test_every_bad_token_gets_the_same_description(server: Server) -> None:
    expired = server.tokens_for()
    server.clock.advance(3600)
    assert (
        invalid_token(server, expired.access_token).description
        == invalid_token(server, "gat_made-up").description
    )


# Scope.


def test_a_token_with_the_needed_scope_passes(server: Server) -> None:
    bearer.require_scope(server.bearer(server.tokens_for().access_token), "write")


def test_a_token_without_the_needed_scope_is_insufficient_scope(server: Server) -> None:
    record = server.bearer(server.exchange(server.code(scope="read")).access_token)
    with pytest.raises(InsufficientScope) as caught:
        bearer.require_scope(record, "write")
    assert (caught.value.error, caught.value.status) == ("insufficient_scope", 403)
    assert "'write'" in caught.value.description
