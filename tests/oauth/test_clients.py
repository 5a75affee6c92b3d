"""Client authentication at the token endpoint: RFC 6749 §2.3, §2.3.1, §3.2.1 and §5.2.

Confidential clients use HTTP Basic with form-urlencoded id and secret (§2.3.1) or the
client_secret in the body; they "MUST NOT use more than one authentication method" (§2.3).
Public clients identify themselves with client_id only (§3.2.1). Failure is ``invalid_client``
with 401 (§5.2), the same answer for an unknown client and a wrong secret.
"""

from __future__ import annotations

import base64

import pytest

from grantly.oauth import clients
from grantly.oauth.clients import ClientCredentials
from grantly.oauth.errors import InvalidClient, InvalidRequest, OAuthError
from grantly.oauth.models import Application
from tests.oauth.memory import run
from tests.oauth.support import Server, basic


def authenticate(server: Server, credentials: ClientCredentials) -> Application:
    return run(clients.authenticate(credentials, server.applications))


def refusal(server: Server, credentials: ClientCredentials) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        authenticate(server, credentials)
    return caught.value


def b64(raw: str) -> str:
    return base64.b64encode(raw.encode()).decode()


# Reading the credentials.


def test_http_basic_credentials_are_read_from_the_header() -> None:
    assert clients.from_request(basic("my-client", "s3cret"), None, None) == ClientCredentials(
        "my-client", "s3cret", "client_secret_basic"
    )


def test_http_basic_id_and_secret_are_form_urldecoded() -> None:
    credentials = clients.from_request(basic("id:with colon", "p@ss w:rd+%"), None, None)
    assert (credentials.client_id, credentials.client_secret) == ("id:with colon", "p@ss w:rd+%")


def test_the_basic_scheme_name_is_case_insensitive() -> None:
    credentials = clients.from_request("BASIC " + b64("my-client:s3cret"), None, None)
    assert credentials.method == "client_secret_basic"


def test_a_secret_in_the_body_is_client_secret_post() -> None:
    assert clients.from_request(None, "my-client", "s3cret") == ClientCredentials(
        "my-client", "s3cret", "client_secret_post"
    )


def test_a_client_id_alone_is_a_public_client() -> None:
    assert clients.from_request(None, "my-client", None) == ClientCredentials(
        "my-client", None, "none"
    )


def test_an_authorization_header_of_another_scheme_is_ignored() -> None:
    credentials = clients.from_request("Bearer gat_abc", "my-client", "s3cret")
    assert credentials.method == "client_secret_post"


def test_basic_together_with_a_secret_in_the_body_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest) as caught:
        clients.from_request(basic("my-client", "s3cret"), None, "s3cret")
    assert (caught.value.error, caught.value.status) == ("invalid_request", 400)
    assert "one method" in caught.value.description


def test_basic_with_the_same_client_id_in_the_body_is_accepted() -> None:
    credentials = clients.from_request(basic("my-client", "s3cret"), "my-client", None)
    assert credentials.client_id == "my-client"


def test_basic_with_a_different_client_id_in_the_body_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest) as caught:
        clients.from_request(basic("my-client", "s3cret"), "someone-else", None)
    assert "differs" in caught.value.description


def test_basic_credentials_that_are_not_base64_are_an_invalid_client() -> None:
    with pytest.raises(InvalidClient) as caught:
        clients.from_request("Basic not base64!", None, None)
    assert (caught.value.error, caught.value.status) == ("invalid_client", 401)


def test_basic_credentials_without_a_colon_are_an_invalid_client() -> None:
    with pytest.raises(InvalidClient) as caught:
        clients.from_request("Basic " + b64("my-client"), None, None)
    assert "client_id:client_secret" in caught.value.description


def test_basic_credentials_with_an_empty_client_id_are_an_invalid_client() -> None:
    with pytest.raises(InvalidClient):
        clients.from_request("Basic " + b64(":s3cret"), None, None)


@pytest.mark.parametrize(
    "raw", ["abc\x00:x", "abc:x\x00", "a%00bc:x", "abc\n:x", "a" * 513 + ":x", "abc:" + "s" * 513]
)
def test_basic_credentials_with_control_characters_or_too_long_are_an_invalid_client(
    raw: str,
) -> None:
    """As the body's parameters are (params.py): a NUL in a client id must never reach the
    database (PostgreSQL refuses it in text)."""
    with pytest.raises(InvalidClient) as caught:
        clients.from_request("Basic " + b64(raw), None, None)
    assert "control characters" in caught.value.description


# Authenticating the client.


def test_a_confidential_client_authenticates_with_its_secret_over_basic(server: Server) -> None:
    secret = server.secrets["web-client"]
    credentials = clients.from_request(basic("web-client", secret), None, None)
    assert authenticate(server, credentials) == server.web_app


def test_a_confidential_client_authenticates_with_its_secret_in_the_body(server: Server) -> None:
    credentials = clients.from_request(None, "web-client", server.secrets["web-client"])
    assert authenticate(server, credentials) == server.web_app


def test_a_wrong_secret_is_an_invalid_client_with_401(server: Server) -> None:
    error = refusal(server, ClientCredentials("web-client", "gcs_wrong", "client_secret_post"))
    assert (error.error, error.status, error.redirectable) == ("invalid_client", 401, False)


def test_an_unknown_client_gets_the_same_answer_as_a_wrong_secret(server: Server) -> None:
    unknown = refusal(server, ClientCredentials("nobody", "gcs_wrong", "client_secret_post"))
    wrong = refusal(server, ClientCredentials("web-client", "gcs_wrong", "client_secret_post"))
    assert (unknown.error, unknown.status, unknown.description) == (
        wrong.error,
        wrong.status,
        wrong.description,
    )


def test_a_confidential_client_without_its_secret_is_an_invalid_client(server: Server) -> None:
    error = refusal(server, ClientCredentials("web-client", None, "none"))
    assert error.error == "invalid_client"
    assert "client_secret" in error.description


def test_a_confidential_client_with_an_empty_basic_secret_is_an_invalid_client(
    server: Server,
) -> None:
    credentials = clients.from_request(basic("web-client", ""), None, None)
    assert refusal(server, credentials).error == "invalid_client"


def test_a_request_without_any_client_id_is_an_invalid_client(server: Server) -> None:
    error = refusal(server, ClientCredentials(None, None, "none"))
    assert (error.error, error.status) == ("invalid_client", 401)
    assert "missing" in error.description


def test_a_public_client_is_identified_by_its_client_id_alone(server: Server) -> None:
    credentials = ClientCredentials("native-client", None, "none")
    assert authenticate(server, credentials) == server.native_app


def test_a_public_client_that_sends_a_secret_is_an_invalid_client(server: Server) -> None:
    error = refusal(server, ClientCredentials("native-client", "guess", "client_secret_post"))
    assert error.error == "invalid_client"
    assert "public" in error.description


def test_one_applications_secret_does_not_authenticate_another(server: Server) -> None:
    secret = server.secrets["reader-client"]
    assert refusal(server, ClientCredentials("web-client", secret, "client_secret_post")).error == (
        "invalid_client"
    )
