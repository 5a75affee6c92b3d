"""OAuth errors: the codes and statuses of RFC 6749 §4.1.2.1 and §5.2, and RFC 6750 §3.1.

§5.2: the JSON body carries ``error`` and ``error_description``; ``invalid_client`` may be
answered with 401. RFC 6750 §3.1: ``invalid_token`` is 401 and ``insufficient_scope`` 403.
§4.1.2.1: only errors for a genuine client and redirect URI are redirected, with the state.
"""

from __future__ import annotations

import pytest

from grantly.oauth import errors
from grantly.oauth.errors import OAuthError


@pytest.mark.parametrize(
    ("kind", "code", "status"),
    [
        (errors.InvalidRequest, "invalid_request", 400),
        (errors.InvalidClient, "invalid_client", 401),
        (errors.InvalidGrant, "invalid_grant", 400),
        (errors.UnauthorizedClient, "unauthorized_client", 400),
        (errors.UnsupportedGrantType, "unsupported_grant_type", 400),
        (errors.UnsupportedResponseType, "unsupported_response_type", 400),
        (errors.InvalidScope, "invalid_scope", 400),
        (errors.AccessDenied, "access_denied", 403),
        (errors.InvalidToken, "invalid_token", 401),
        (errors.InsufficientScope, "insufficient_scope", 403),
    ],
)
def test_each_error_has_its_rfc_code_and_status(
    kind: type[OAuthError], code: str, status: int
) -> None:
    error = kind("something went wrong.")
    assert (error.error, error.status) == (code, status)


def test_an_error_is_not_redirectable_until_marked() -> None:
    error = errors.InvalidScope("no.")
    assert (error.redirectable, error.redirect_uri, error.state) == (False, None, None)


def test_marking_an_error_redirectable_records_the_uri_and_the_state() -> None:
    error = errors.InvalidScope("no.").as_redirectable("https://client.example/cb", "xyz")
    assert (error.redirectable, error.redirect_uri, error.state) == (
        True,
        "https://client.example/cb",
        "xyz",
    )


def test_the_body_has_the_error_and_its_description_only() -> None:
    error = errors.InvalidGrant("the code expired.", debug="code 42 expired at 1700000600")
    assert error.body() == {"error": "invalid_grant", "error_description": "the code expired."}


def test_the_code_and_status_can_be_given_explicitly() -> None:
    error = OAuthError("no such client.", error="invalid_client", status=400)
    assert (error.error, error.status) == ("invalid_client", 400)


def test_the_description_is_the_exception_message() -> None:
    assert str(errors.InvalidRequest("the 'code' parameter is missing.")) == (
        "the 'code' parameter is missing."
    )
