"""Resource indicators (RFC 8707) in the protocol core.

§2: ``resource`` is an absolute URI without fragment, repeatable, naming where the token will
be used; an invalid, unknown or malformed one is ``invalid_target``. §2.1: at the authorization
endpoint it applies to the whole grant, and errors go back to the trusted redirect URI. §2.2: a
token request may narrow the grant's resources (the refresh token stays bound to all of them),
never widen them. RFC 7662 §2.2: introspection tells the token's ``aud``; a resource server
sees only the tokens issued for it.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grantly.oauth import bearer, resources
from grantly.oauth.errors import (
    InvalidClient,
    InvalidScope,
    InvalidTarget,
    InvalidToken,
    OAuthError,
)
from grantly.oauth.introspection import introspect
from grantly.oauth.models import API
from grantly.oauth.secrets import digest
from tests.oauth.memory import run
from tests.oauth.support import ISSUER, REDIRECT_URI, STATE, Server, basic, params

REPORTS = "https://reports.example/api"
FILES = "https://files.example"
OWN_API = f"{ISSUER}/api"


def refusal(server: Server, **query: Any) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        server.authorize(**query)
    return caught.value


def facts(server: Server, token: str, client_id: str, secret: str, **more: str) -> dict[str, Any]:
    return run(introspect(params(token=token, **more), basic(client_id, secret), server.context))


def app_facts(server: Server, token: str) -> dict[str, Any]:
    return facts(server, token, "web-client", "gcs_web-client-secret")


def audience_of(server: Server, token: str) -> tuple[str, ...]:
    record = run(server.tokens.access_token(digest(token)))
    assert record is not None
    return record.audience


@pytest.fixture
def reports(server: Server):
    return server.add_resource_server(REPORTS, secret="grs_reports")


@pytest.fixture
def files(server: Server):
    return server.add_resource_server(FILES, secret="grs_files")


# The resource parameter's syntax (§2).


@pytest.mark.parametrize(
    "value",
    ["reports.example/api", "/api", "//reports.example/api", "api", "https://reports.example/#x"],
)
def test_a_relative_uri_or_a_fragment_is_invalid_target(server: Server, value: str) -> None:
    error = refusal(server, resource=value)
    assert error.error == "invalid_target"
    assert error.redirectable and error.redirect_uri == REDIRECT_URI and error.state == STATE


def test_an_unregistered_resource_is_invalid_target_and_names_the_own_api(server: Server) -> None:
    error = refusal(server, resource="https://elsewhere.example/api")
    assert isinstance(error, InvalidTarget) and error.redirectable
    assert OWN_API in error.description


def test_an_empty_resource_counts_as_omitted(server: Server) -> None:
    assert server.authorize(resource="").audience == (API,)


def test_uris_are_compared_normalized(server: Server, reports) -> None:
    for spelling in ("HTTPS://Reports.Example/api", "https://reports.example:443/api"):
        assert server.authorize(resource=spelling).audience == (REPORTS,)
    assert resources.normalize("https://files.example/") == FILES
    assert resources.normalize("http://[::1]:80/x") == "http://[::1]/x"


URI_PIECES = ["https://", "HTTP://", "urn:", "a", "B", "1", ":", "@", "[", "]", "%", "?", "/"]
URI_PIECES += [".", "::1", "#", "443", "80"]


@given(st.one_of(st.text(max_size=40), st.lists(st.sampled_from(URI_PIECES)).map("".join)))
def test_normalizing_is_invalid_target_or_a_fixed_point(value: str) -> None:
    try:
        once = resources.normalize(value)
    except InvalidTarget:
        return
    assert resources.normalize(once) == once


def test_the_path_is_compared_as_written(server: Server, reports) -> None:
    assert refusal(server, resource=REPORTS + "/").error == "invalid_target"
    assert refusal(server, resource=REPORTS.replace("/api", "/API")).error == "invalid_target"


def test_more_than_ten_resources_are_an_invalid_request(server: Server) -> None:
    error = refusal(server, resource=[OWN_API] * 11)
    assert error.error == "invalid_request" and error.redirectable


# The grant's audience (§2.1).


def test_no_resource_is_grantly_s_own_api(server: Server) -> None:
    request = server.authorize()
    assert request.audience == (API,) and request.resource_uris == ()
    assert "resource" not in dict(request.query())


def test_the_own_api_may_be_named(server: Server) -> None:
    assert server.authorize(resource=OWN_API).audience == (API,)


def test_a_registered_resource_and_the_own_api_make_the_grant_s_audience(
    server: Server, reports
) -> None:
    request = server.authorize(resource=[REPORTS, OWN_API, REPORTS])
    assert request.audience == (REPORTS, API)
    code = server.issue_code(request)
    record = run(server.codes.find(digest(code)))
    assert record.audience == (REPORTS, API)


def test_the_carried_query_keeps_every_resource(server: Server, reports) -> None:
    request = server.authorize(resource=[REPORTS, OWN_API])
    carried: dict[str, list[str]] = {}
    for name, value in request.query():
        carried.setdefault(name, []).append(value)
    assert carried["resource"] == [REPORTS, OWN_API]
    assert server.validate(carried) == request


# Scopes for resource servers that declare theirs.


def test_a_resource_that_declares_scopes_narrows_the_default_scopes(server: Server) -> None:
    server.add_resource_server(REPORTS, scopes=("read",))
    assert server.authorize(resource=REPORTS).scopes == ("read",)
    assert server.authorize(resource=[REPORTS, OWN_API]).scopes == ("read",)


def test_a_scope_the_resource_does_not_declare_is_refused(server: Server) -> None:
    server.add_resource_server(REPORTS, scopes=("read",))
    error = refusal(server, resource=REPORTS, scope="read write")
    assert isinstance(error, InvalidScope) and error.redirectable
    assert "'write'" in error.description


def test_a_resource_that_declares_no_scopes_takes_the_application_s(
    server: Server, reports
) -> None:
    assert server.authorize(resource=REPORTS, scope="write").scopes == ("write",)


def test_no_scope_every_resource_takes_is_invalid_scope(server: Server) -> None:
    server.add_resource_server(REPORTS, scopes=("write",))
    with pytest.raises(InvalidScope) as caught:
        server.authorize(server.reader_app, resource=REPORTS)  # registered for read only
    assert caught.value.redirectable


# Token requests narrow, never widen (§2.2).


def test_the_access_token_has_the_grant_s_audience(server: Server, reports) -> None:
    tokens = server.exchange(server.code(resource=[REPORTS, OWN_API]))
    assert audience_of(server, tokens.access_token) == (REPORTS, API)


def test_a_code_exchange_may_narrow_and_the_refresh_token_keeps_the_grant(
    server: Server, reports
) -> None:
    tokens = server.exchange(server.code(resource=[REPORTS, OWN_API]), resource=REPORTS)
    assert audience_of(server, tokens.access_token) == (REPORTS,)
    refreshed = server.refresh(tokens.refresh_token)
    assert audience_of(server, refreshed.access_token) == (REPORTS, API)


def test_a_refresh_may_narrow_and_widen_back_within_the_grant(server: Server, reports) -> None:
    tokens = server.exchange(server.code(resource=[REPORTS, OWN_API]))
    narrowed = server.refresh(tokens.refresh_token, resource=OWN_API)
    assert audience_of(server, narrowed.access_token) == (API,)
    again = server.refresh(narrowed.refresh_token, resource=[REPORTS, OWN_API])
    assert audience_of(server, again.access_token) == (REPORTS, API)


def test_a_code_exchange_cannot_widen_the_grant(server: Server, reports) -> None:
    code = server.code()
    with pytest.raises(InvalidTarget) as caught:
        server.exchange(code, resource=REPORTS)
    assert "RFC 8707" in caught.value.description
    # Not burnt: the client asked for the wrong thing; it may ask again.
    assert audience_of(server, server.exchange(code).access_token) == (API,)


def test_a_refresh_cannot_widen_the_grant(server: Server, reports) -> None:
    tokens = server.exchange(server.code(resource=REPORTS))
    with pytest.raises(InvalidTarget):
        server.refresh(tokens.refresh_token, resource=[REPORTS, OWN_API])
    assert audience_of(server, server.refresh(tokens.refresh_token).access_token) == (REPORTS,)


def test_a_malformed_resource_at_the_token_endpoint_is_invalid_target(server: Server) -> None:
    code = server.code()
    for value in ("api", "https://grantly.example/api#top"):
        with pytest.raises(InvalidTarget):
            server.exchange(code, resource=value)


def test_a_wrong_secret_is_told_before_the_resource(server: Server) -> None:
    code = server.code()
    with pytest.raises(InvalidClient):
        server.exchange(code, client_secret="wrong", resource="relative")


# Introspection: aud, and what a resource server sees (RFC 7662 §2.2).


def test_aud_is_a_string_for_one_resource(server: Server) -> None:
    tokens = server.tokens_for()
    assert app_facts(server, tokens.access_token)["aud"] == OWN_API
    refresh = app_facts(server, tokens.refresh_token)
    assert refresh["token_use"] == "refresh_token" and refresh["aud"] == OWN_API


def test_aud_is_an_array_for_several(server: Server, reports) -> None:
    tokens = server.exchange(server.code(resource=[OWN_API, REPORTS]))
    assert app_facts(server, tokens.access_token)["aud"] == [OWN_API, REPORTS]


def test_a_resource_server_sees_a_token_issued_for_it(server: Server, reports) -> None:
    tokens = server.exchange(server.code(resource=[REPORTS, OWN_API]))
    seen = facts(server, tokens.access_token, reports.client_id, "grs_reports")
    assert seen["active"] is True and seen["aud"] == [REPORTS, OWN_API]
    assert seen["client_id"] == "web-client" and seen["sub"] == f"user:{server.employee.id}"


def test_a_resource_server_does_not_see_a_token_for_another_resource(
    server: Server, reports, files
) -> None:
    for_files = server.exchange(server.code(resource=FILES))
    for_the_api = server.tokens_for()
    for token in (for_files.access_token, for_the_api.access_token):
        assert facts(server, token, reports.client_id, "grs_reports") == {"active": False}
    assert facts(server, for_files.access_token, files.client_id, "grs_files")["active"] is True


def test_a_resource_server_never_sees_refresh_tokens(server: Server, reports) -> None:
    tokens = server.exchange(server.code(resource=REPORTS))
    seen = facts(
        server,
        tokens.refresh_token,
        reports.client_id,
        "grs_reports",
        token_type_hint="refresh_token",
    )
    assert seen == {"active": False}


def test_a_resource_server_does_not_see_a_revoked_token(server: Server, reports) -> None:
    tokens = server.exchange(server.code(resource=REPORTS))
    record = run(server.tokens.access_token(digest(tokens.access_token)))
    run(server.tokens.revoke_access_token(record.id, server.clock.now()))
    assert facts(server, tokens.access_token, reports.client_id, "grs_reports") == {"active": False}


@pytest.mark.parametrize(("client_id", "secret"), [("rs.1", "wrong"), ("rs.nobody", "grs_reports")])
def test_a_resource_server_with_wrong_credentials_is_an_invalid_client(
    server: Server, reports, client_id: str, secret: str
) -> None:
    tokens = server.exchange(server.code(resource=REPORTS))
    with pytest.raises(InvalidClient) as caught:
        facts(server, tokens.access_token, client_id, secret)
    assert "unknown client or wrong secret" in caught.value.description


def test_an_application_still_sees_its_tokens_whatever_their_audience(
    server: Server, reports
) -> None:
    tokens = server.exchange(server.code(resource=REPORTS))
    assert app_facts(server, tokens.access_token)["aud"] == REPORTS


# Bearer validation at a resource (RFC 6750 §3.1).


def test_a_resource_refuses_a_token_not_issued_for_it(server: Server, reports) -> None:
    tokens = server.exchange(server.code(resource=REPORTS))
    token = server.bearer(tokens.access_token)
    with pytest.raises(InvalidToken) as caught:
        bearer.require_audience(token, API)
    assert caught.value.status == 401 and "RFC 8707" in caught.value.description
    bearer.require_audience(token, REPORTS)


# Registering a resource server's URI.


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("", "empty"),
        ("reports.example/api", "absolute"),
        ("ftp://reports.example/", "https"),
        ("https://reports.example/#frag", "fragment"),
        ("https://user@reports.example/", "user information"),
        ("https:///api", "no host"),
        ("http://reports.example/api", "http"),
        ("http://127.0.0.1:9000/api", "development"),
        ("https://exämple.com/", "ASCII"),
        ("https://reports.example/a b", "characters"),
    ],
)
def test_a_resource_server_uri_must_be_absolute_https(uri: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        resources.validate_registration(uri, allow_loopback_http=False)


def test_http_on_loopback_is_registered_in_development_only() -> None:
    uri = "http://127.0.0.1:9000/api"
    assert resources.validate_registration(uri, allow_loopback_http=True) == uri
    with pytest.raises(ValueError, match="loopback"):
        resources.validate_registration("http://reports.example/", allow_loopback_http=True)


def test_a_registered_uri_is_kept_normalized() -> None:
    assert (
        resources.validate_registration(" HTTPS://Reports.Example:443/ ", allow_loopback_http=False)
        == "https://reports.example"
    )


def test_declared_scopes_are_scopes_the_server_offers() -> None:
    assert resources.registered_scopes(["write", "read"], ("read", "write")) == ("read", "write")
    with pytest.raises(ValueError, match="unknown scope"):
        resources.registered_scopes(["admin"], ("read", "write"))
