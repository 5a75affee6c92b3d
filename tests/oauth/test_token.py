"""The token endpoint's dispatch: RFC 6749 §3.2, §4.1.3, §5.2 and §6.

§5.2: an unknown grant_type is ``unsupported_grant_type``; a missing or repeated parameter is
``invalid_request``; failed client authentication is ``invalid_client`` (401). §2.3: one
authentication method per request.
"""

from __future__ import annotations

import pytest

from grantly.oauth.errors import OAuthError
from tests.oauth.support import REDIRECT_URI, Server, basic


def refusal(
    server: Server, authorization: str | None = None, /, **body: str | list[str] | None
) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        server.token(authorization, **body)
    return caught.value


def test_a_missing_grant_type_is_an_invalid_request(server: Server) -> None:
    error = refusal(server, code=server.code(), **server.client_auth(server.web_app))
    assert (error.error, error.status) == ("invalid_request", 400)
    assert "'grant_type'" in error.description


def test_a_repeated_grant_type_is_an_invalid_request(server: Server) -> None:
    error = refusal(server, grant_type=["authorization_code", "refresh_token"])
    assert error.error == "invalid_request"


@pytest.mark.parametrize(
    "grant_type", ["password", "implicit", "CODE", "urn:ietf:params:oauth:grant-type:device_code"]
)
def test_an_unknown_grant_type_is_unsupported_grant_type(server: Server, grant_type: str) -> None:
    error = refusal(server, grant_type=grant_type, client_id="web-client")
    assert (error.error, error.status, error.redirectable) == ("unsupported_grant_type", 400, False)


def test_the_unsupported_grant_type_description_lists_the_supported_ones(server: Server) -> None:
    error = refusal(server, grant_type="password")
    assert "authorization_code, refresh_token" in error.description


def test_authorization_code_dispatches_to_the_code_exchange(server: Server) -> None:
    assert server.exchange(server.code()).refresh_token is not None


def test_refresh_token_dispatches_to_the_refresh(server: Server) -> None:
    assert server.refresh(server.tokens_for().refresh_token).refresh_token is not None


def test_a_wrong_client_secret_is_an_invalid_client_before_the_code_is_looked_at(
    server: Server,
) -> None:
    code = server.code()
    error = refusal(
        server,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT_URI,
        client_id="web-client",
        client_secret="gcs_wrong",
    )
    assert (error.error, error.status) == ("invalid_client", 401)
    assert server.exchange(code).access_token  # the code was not used up


def test_a_wrong_basic_secret_is_an_invalid_client(server: Server) -> None:
    error = refusal(
        server,
        basic("web-client", "gcs_wrong"),
        grant_type="authorization_code",
        code=server.code(),
        redirect_uri=REDIRECT_URI,
    )
    assert (error.error, error.status) == ("invalid_client", 401)


def test_two_authentication_methods_in_one_request_are_an_invalid_request(server: Server) -> None:
    secret = server.secrets["web-client"]
    error = refusal(
        server,
        basic("web-client", secret),
        grant_type="authorization_code",
        code=server.code(),
        redirect_uri=REDIRECT_URI,
        client_secret=secret,
    )
    assert (error.error, error.status) == ("invalid_request", 400)


def test_a_repeated_client_secret_is_an_invalid_request(server: Server) -> None:
    secret = server.secrets["web-client"]
    error = refusal(
        server,
        grant_type="refresh_token",
        refresh_token="grt_x",
        client_id="web-client",
        client_secret=[secret, secret],
    )
    assert error.error == "invalid_request"


def test_an_unauthenticated_request_is_an_invalid_client(server: Server) -> None:
    error = refusal(server, grant_type="authorization_code", code=server.code())
    assert (error.error, error.status) == ("invalid_client", 401)


def test_an_over_long_parameter_is_an_invalid_request(server: Server) -> None:
    error = refusal(
        server,
        grant_type="authorization_code",
        code="c" * 5000,
        client_id="web-client",
        client_secret=server.secrets["web-client"],
    )
    assert (error.error, error.status) == ("invalid_request", 400)
