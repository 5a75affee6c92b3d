"""The authorization endpoint: RFC 6749 §4.1.1, §4.1.2 and §4.1.2.1, with RFC 7636 and RFC 9207.

§4.1.2.1: when the client identifier or the redirection URI is missing, invalid or mismatching,
the server "MUST NOT automatically redirect the user-agent"; every other error goes back to the
redirect URI with ``error``, ``error_description`` and the ``state``. §3.1.2.3: redirect_uri may
be omitted only when a single one is registered. RFC 7636 §4.4.1 and RFC 9700 §2.1.1: public
clients must send a PKCE challenge. RFC 9207 §2: responses carry ``iss``. §4.1.2: the code is
short-lived, single-use and bound to the client and redirect URI.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from grantly.oauth.authorize import (
    AuthorizationPolicy,
    error_redirect,
    resource_owner,
    success_redirect,
)
from grantly.oauth.errors import AccessDenied, OAuthError
from grantly.oauth.models import ResourceOwner
from grantly.oauth.redirect_uris import OUT_OF_BAND
from grantly.oauth.secrets import digest
from tests.oauth.memory import run
from tests.oauth.support import (
    CODE_LIFETIME,
    ISSUER,
    NATIVE_REDIRECT_URI,
    OTHER_REDIRECT_URI,
    REDIRECT_URI,
    RFC7636_CHALLENGE,
    RFC7636_VERIFIER,
    STATE,
    Server,
    description_is_rfc6749_safe,
)


def refusal(server: Server, query: dict[str, list[str]]) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        server.validate(query)
    return caught.value


def query_of(uri: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(uri).query).items()}


def redirected_description(error: OAuthError) -> str:
    """The error_description as it reaches the client in the error redirect."""
    assert error.redirectable and error.redirect_uri is not None
    return query_of(error_redirect(error.redirect_uri, error, error.state, ISSUER))[
        "error_description"
    ]


# Errors shown to the person, never redirected.


def test_a_missing_client_id_is_not_redirected(server: Server) -> None:
    error = refusal(server, server.authorization_query(client_id=None))
    assert (error.error, error.status, error.redirectable) == ("invalid_request", 400, False)
    assert "'client_id'" in error.description


def test_an_unknown_client_is_not_redirected(server: Server) -> None:
    error = refusal(server, server.authorization_query(client_id="nobody"))
    assert (error.error, error.status, error.redirectable) == ("invalid_client", 400, False)
    assert error.redirect_uri is None


def test_a_repeated_client_id_is_not_redirected(server: Server) -> None:
    error = refusal(server, server.authorization_query(client_id=["web-client", "web-client"]))
    assert (error.error, error.redirectable) == ("invalid_request", False)


def test_an_unregistered_redirect_uri_is_not_redirected(server: Server) -> None:
    error = refusal(server, server.authorization_query(redirect_uri="https://evil.example/cb"))
    assert (error.error, error.status, error.redirectable) == ("invalid_request", 400, False)
    assert error.redirect_uri is None
    assert "character for character" in error.description


def test_a_redirect_uri_differing_by_a_trailing_slash_is_not_redirected(server: Server) -> None:
    error = refusal(server, server.authorization_query(redirect_uri=REDIRECT_URI + "/"))
    assert error.redirectable is False


def test_a_redirect_uri_with_an_added_query_is_not_redirected(server: Server) -> None:
    error = refusal(server, server.authorization_query(redirect_uri=REDIRECT_URI + "?next=evil"))
    assert error.redirectable is False


def test_a_bad_redirect_uri_is_reported_before_any_other_error(server: Server) -> None:
    query = server.authorization_query(
        redirect_uri="https://evil.example/cb", response_type="token", scope="admin"
    )
    error = refusal(server, query)
    assert (error.error, error.redirectable) == ("invalid_request", False)


def test_a_missing_redirect_uri_with_several_registered_is_not_redirected(server: Server) -> None:
    error = refusal(server, server.authorization_query(redirect_uri=None))
    assert (error.error, error.redirectable) == ("invalid_request", False)
    assert "2 redirect URIs" in error.description


def test_a_repeated_redirect_uri_is_not_redirected(server: Server) -> None:
    query = server.authorization_query(redirect_uri=[REDIRECT_URI, OTHER_REDIRECT_URI])
    error = refusal(server, query)
    assert (error.error, error.redirectable) == ("invalid_request", False)


# Errors sent back to the client's redirect URI.


def test_a_missing_response_type_is_redirected_with_the_state(server: Server) -> None:
    error = refusal(server, server.authorization_query(response_type=None))
    assert (error.error, error.status, error.redirectable) == ("invalid_request", 400, True)
    assert (error.redirect_uri, error.state) == (REDIRECT_URI, STATE)
    assert "response_type=code" in error.description


def test_an_unsupported_response_type_is_redirected_as_unsupported_response_type(
    server: Server,
) -> None:
    error = refusal(server, server.authorization_query(response_type="token"))
    assert (error.error, error.redirectable, error.state) == (
        "unsupported_response_type",
        True,
        STATE,
    )
    assert "response_type=code" in error.description


def test_scopes_glued_to_the_response_type_get_a_description_suggesting_the_scope_parameter(
    server: Server,
) -> None:
    error = refusal(server, server.authorization_query(response_type="code=read,write"))
    assert (error.error, error.redirectable, error.state) == ("invalid_request", True, STATE)
    assert "response_type=code&scope=read,write" in error.description


def test_an_error_goes_to_the_single_registered_uri_when_redirect_uri_is_omitted(
    server: Server,
) -> None:
    query = server.authorization_query(server.reader_app, redirect_uri=None, response_type="x")
    error = refusal(server, query)
    assert (error.redirectable, error.redirect_uri) == (True, REDIRECT_URI)


def test_an_error_goes_to_the_requested_one_of_several_registered_uris(server: Server) -> None:
    error = refusal(server, server.authorization_query(redirect_uri=OTHER_REDIRECT_URI, scope="x!"))
    assert (error.redirectable, error.redirect_uri) == (True, OTHER_REDIRECT_URI)


def test_an_unknown_scope_is_redirected_as_invalid_scope(server: Server) -> None:
    error = refusal(server, server.authorization_query(scope="read payroll"))
    assert (error.error, error.status, error.redirectable, error.state) == (
        "invalid_scope",
        400,
        True,
        STATE,
    )
    assert "'payroll'" in error.description


def test_a_scope_beyond_the_applications_registration_is_refused_not_narrowed(
    server: Server,
) -> None:
    error = refusal(server, server.authorization_query(server.reader_app, scope="read write"))
    assert (error.error, error.redirectable) == ("invalid_scope", True)
    assert "registered for: read" in error.description


def test_a_malformed_scope_is_redirected_as_invalid_scope(server: Server) -> None:
    error = refusal(server, server.authorization_query(scope='read "write"'))
    assert (error.error, error.redirectable) == ("invalid_scope", True)


def test_an_unknown_resource_owner_type_is_redirected_as_invalid_request(server: Server) -> None:
    error = refusal(server, server.authorization_query(resource_owner_type="team"))
    assert (error.error, error.redirectable, error.state) == ("invalid_request", True, STATE)
    assert "'user' or 'company'" in error.description


def test_a_public_client_without_pkce_is_redirected_as_invalid_request(server: Server) -> None:
    query = server.authorization_query(
        server.native_app, code_challenge=None, code_challenge_method=None
    )
    error = refusal(server, query)
    assert (error.error, error.redirectable, error.redirect_uri) == (
        "invalid_request",
        True,
        NATIVE_REDIRECT_URI,
    )
    assert "PKCE" in error.description
    assert "code_challenge_method=S256" in error.description


def test_a_plain_pkce_challenge_is_redirected_as_invalid_request(server: Server) -> None:
    query = server.authorization_query(
        server.native_app, code_challenge=RFC7636_VERIFIER, code_challenge_method="plain"
    )
    error = refusal(server, query)
    assert (error.error, error.redirectable) == ("invalid_request", True)
    assert "S256" in error.description


def test_a_pkce_challenge_without_a_method_is_refused_as_plain(server: Server) -> None:
    query = server.authorization_query(server.native_app, code_challenge_method=None)
    assert refusal(server, query).error == "invalid_request"


def test_a_repeated_state_is_redirected_without_a_state(server: Server) -> None:
    error = refusal(server, server.authorization_query(state=["a", "b"]))
    assert (error.error, error.redirectable, error.state) == ("invalid_request", True, None)


def test_a_repeated_scope_is_redirected_as_invalid_request(server: Server) -> None:
    error = refusal(server, server.authorization_query(scope=["read", "write"]))
    assert (error.error, error.redirectable) == ("invalid_request", True)


def test_an_error_without_a_state_is_redirected_without_one(server: Server) -> None:
    error = refusal(server, server.authorization_query(state=None, response_type="token"))
    assert (error.redirectable, error.state) == (True, None)


def test_a_redirected_error_description_uses_only_characters_rfc_6749_allows(
    server: Server,
) -> None:
    query = server.authorization_query(
        server.native_app, code_challenge=None, code_challenge_method=None
    )
    description = redirected_description(refusal(server, query))
    assert description_is_rfc6749_safe(description), description


def test_a_redirected_error_description_does_not_echo_forbidden_characters_from_the_request(
    server: Server,
) -> None:
    error = refusal(server, server.authorization_query(response_type='to"ken\\é'))
    description = redirected_description(error)
    assert description_is_rfc6749_safe(description), description


# Valid requests.


def test_a_valid_request_is_accepted_with_the_applications_scopes_by_default(
    server: Server,
) -> None:
    request = server.authorize()
    assert (request.application, request.scopes) == (server.web_app, ("read", "write"))


def test_a_valid_request_keeps_the_redirect_uri_and_the_state(server: Server) -> None:
    request = server.authorize(redirect_uri=OTHER_REDIRECT_URI)
    assert (request.redirect_uri, request.redirect_uri_in_request, request.state) == (
        OTHER_REDIRECT_URI,
        True,
        STATE,
    )


def test_an_omitted_redirect_uri_is_the_single_registered_one(server: Server) -> None:
    request = server.authorize(server.reader_app, redirect_uri=None)
    assert (request.redirect_uri, request.redirect_uri_in_request) == (REDIRECT_URI, False)


def test_a_request_without_state_is_accepted(server: Server) -> None:
    assert server.authorize(state=None).state is None


def test_comma_separated_scopes_are_accepted(server: Server) -> None:
    assert server.authorize(scope="write,read").scopes == ("read", "write")


def test_a_narrower_scope_is_granted_as_asked(server: Server) -> None:
    assert server.authorize(scope="read").scopes == ("read",)


def test_an_empty_scope_parameter_means_the_applications_scopes(server: Server) -> None:
    assert server.authorize(server.reader_app, scope="").scopes == ("read",)


def test_the_resource_owner_is_a_user_by_default(server: Server) -> None:
    assert server.authorize().owner_type == "user"


def test_a_company_resource_owner_may_be_requested(server: Server) -> None:
    assert server.authorize(resource_owner_type="company").owner_type == "company"


def test_a_public_client_with_an_s256_challenge_is_accepted(server: Server) -> None:
    request = server.authorize(server.native_app)
    assert (request.code_challenge, request.code_challenge_method) == (RFC7636_CHALLENGE, "S256")


def test_a_confidential_client_may_also_use_pkce(server: Server) -> None:
    request = server.authorize(code_challenge=RFC7636_CHALLENGE, code_challenge_method="S256")
    assert request.code_challenge == RFC7636_CHALLENGE


def test_a_confidential_client_may_omit_pkce(server: Server) -> None:
    assert server.authorize().code_challenge is None


def test_a_plain_challenge_is_accepted_when_the_server_allows_plain(server: Server) -> None:
    server.authorization_policy = AuthorizationPolicy(
        server_scopes=("read", "write"), allow_plain_pkce=True
    )
    request = server.authorize(
        server.native_app, code_challenge=RFC7636_VERIFIER, code_challenge_method="plain"
    )
    assert request.code_challenge_method == "plain"


def test_the_out_of_band_redirect_uri_is_recognised(server: Server) -> None:
    application = server.add_application(redirect_uris=(OUT_OF_BAND,), secret="gcs_x")
    assert server.authorize(application).out_of_band


def test_the_carried_query_validates_to_the_same_request(server: Server) -> None:
    request = server.authorize(server.native_app, scope="read")
    carried = {name: [value] for name, value in request.query()}
    assert server.validate(carried) == request


def test_the_carried_query_of_a_company_request_validates_to_the_same_request(
    server: Server,
) -> None:
    request = server.authorize(scope="read", resource_owner_type="company")
    carried = {name: [value] for name, value in request.query()}
    assert server.validate(carried) == request


def test_the_carried_query_omits_a_redirect_uri_the_client_did_not_send(server: Server) -> None:
    request = server.authorize(server.reader_app, redirect_uri=None)
    assert "redirect_uri" not in dict(request.query())


# The resource owner and the code.


def test_a_user_grant_acts_as_the_user(server: Server) -> None:
    owner = resource_owner(server.authorize(), server.employee)
    assert owner == ResourceOwner("user", server.company_id, server.employee.id)


def test_a_company_grant_authorized_by_an_admin_acts_for_the_company(server: Server) -> None:
    owner = resource_owner(server.authorize(resource_owner_type="company"), server.admin)
    assert owner == ResourceOwner("company", server.company_id, server.admin.id)


def test_a_company_grant_needs_an_admin(server: Server) -> None:
    request = server.authorize(resource_owner_type="company")
    with pytest.raises(AccessDenied) as caught:
        resource_owner(request, server.employee)
    assert (caught.value.error, caught.value.redirectable, caught.value.state) == (
        "access_denied",
        True,
        STATE,
    )
    assert "admin" in caught.value.description


def test_a_deactivated_user_cannot_authorize(server: Server) -> None:
    with pytest.raises(AccessDenied) as caught:
        resource_owner(server.authorize(), server.former_employee)
    assert (caught.value.error, caught.value.redirectable) == ("access_denied", True)
    assert "deactivated" in caught.value.description


def test_issuing_a_code_for_a_non_admin_company_grant_stores_nothing(server: Server) -> None:
    request = server.authorize(resource_owner_type="company")
    with pytest.raises(AccessDenied):
        server.issue_code(request, server.employee)
    assert server.db.codes == {}


def test_an_issued_code_is_stored_only_as_its_digest(server: Server) -> None:
    code = server.code()
    assert code.startswith("gac_")
    assert list(server.db.codes) == [digest(code)]
    assert code not in repr(server.db.codes)


def test_an_issued_code_carries_at_least_256_bits(server: Server) -> None:
    assert len(server.code()) >= len("gac_") + 43


def test_an_issued_code_is_bound_to_the_client_redirect_uri_scopes_and_challenge(
    server: Server,
) -> None:
    code = server.code(server.native_app, scope="read")
    record = run(server.codes.find(digest(code)))
    assert record is not None
    assert (
        record.application_id,
        record.redirect_uri,
        record.redirect_uri_in_request,
        record.scopes,
        record.code_challenge,
        record.code_challenge_method,
        record.owner,
    ) == (
        server.native_app.id,
        NATIVE_REDIRECT_URI,
        True,
        ("read",),
        RFC7636_CHALLENGE,
        "S256",
        ResourceOwner.for_user(server.employee),
    )


def test_an_issued_code_expires_after_its_lifetime(server: Server) -> None:
    record = run(server.codes.find(digest(server.code())))
    assert record is not None
    assert record.expires_at == server.clock.now() + CODE_LIFETIME


def test_two_codes_for_the_same_request_differ(server: Server) -> None:
    request = server.authorize()
    assert server.issue_code(request) != server.issue_code(request)


# The redirects.


def test_the_success_redirect_carries_the_code_the_state_and_the_issuer(server: Server) -> None:
    uri = success_redirect(server.authorize(), "gac_abc", ISSUER)
    assert uri.startswith(REDIRECT_URI + "?")
    assert query_of(uri) == {"code": "gac_abc", "state": STATE, "iss": ISSUER}


def test_the_success_redirect_omits_a_state_the_client_did_not_send(server: Server) -> None:
    uri = success_redirect(server.authorize(state=None), "gac_abc", ISSUER)
    assert query_of(uri) == {"code": "gac_abc", "iss": ISSUER}


def test_the_success_redirect_returns_the_state_exactly(server: Server) -> None:
    state = "a b&c=d/é+%"
    uri = success_redirect(server.authorize(state=state), "gac_abc", ISSUER)
    assert query_of(uri)["state"] == state


def test_the_success_redirect_keeps_the_registered_query(server: Server) -> None:
    uri_with_query = "https://client.example/cb?tenant=acme"
    application = server.add_application(redirect_uris=(uri_with_query,), secret="gcs_x")
    uri = success_redirect(server.authorize(application), "gac_abc", ISSUER)
    assert query_of(uri)["tenant"] == "acme"
    assert query_of(uri)["code"] == "gac_abc"


def test_the_error_redirect_carries_the_error_its_description_the_state_and_the_issuer(
    server: Server,
) -> None:
    error = refusal(server, server.authorization_query(response_type="token"))
    assert error.redirect_uri is not None
    uri = error_redirect(error.redirect_uri, error, error.state, ISSUER)
    assert query_of(uri) == {
        "error": "unsupported_response_type",
        "error_description": error.description,
        "state": STATE,
        "iss": ISSUER,
    }


def test_the_error_redirect_omits_a_missing_state(server: Server) -> None:
    error = refusal(server, server.authorization_query(response_type="token", state=None))
    assert error.redirect_uri is not None
    assert "state" not in query_of(error_redirect(error.redirect_uri, error, None, ISSUER))


def test_a_public_application_cannot_ask_for_a_company_token(server: Server) -> None:
    with pytest.raises(OAuthError) as caught:
        server.authorize(server.native_app, resource_owner_type="company")
    assert caught.value.error == "unauthorized_client"
    assert caught.value.redirectable
