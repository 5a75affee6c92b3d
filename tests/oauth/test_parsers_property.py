"""Property tests over the request parsers (issue 5): whatever arrives at the authorization or
the token endpoint, the protocol core answers with a result or an ``OAuthError`` (which the web
layer turns into the RFC 6749 §4.1.2.1 / §5.2 response), never with any other exception. The
inputs mix valid values of a seeded client with arbitrary text, so the generated requests get
past client identification and into every later check."""

from __future__ import annotations

import base64

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from grantly.oauth.errors import OAuthError
from grantly.oauth.models import TokenResponse
from grantly.oauth.secrets import digest
from tests.oauth.support import RFC7636_CHALLENGE, RFC7636_VERIFIER, Server

NAMES = [
    "client_id",
    "client_secret",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "resource_owner_type",
    "code_challenge",
    "code_challenge_method",
    "grant_type",
    "code",
    "refresh_token",
    "code_verifier",
    "resource",
]
KNOWN = [
    "web-client",
    "native-client",
    "gcs_web-client-secret",
    "https://client.example/callback",
    "com.example.app:/oauth/callback",
    "http://127.0.0.1:5000/cb",
    "https://grantly.example/api",
    "code",
    "token",
    "code=read,write",
    "read",
    "read write",
    "read,write",
    "admin",
    "company",
    "user",
    "S256",
    "plain",
    RFC7636_CHALLENGE,
    RFC7636_VERIFIER,
    "authorization_code",
    "refresh_token",
    "urn:ietf:wg:oauth:2.0:oob",
    "",
    " ",
    "\x00",
    "\r\n",
    "é" * 300,
    "x" * 5000,
]
VALUE = st.one_of(st.sampled_from(KNOWN), st.text(max_size=60))
PARAMS = st.dictionaries(
    st.one_of(st.sampled_from(NAMES), st.text(max_size=10)),
    st.lists(VALUE, min_size=1, max_size=3),
    max_size=10,
)
HEADER = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.builds(
        lambda scheme, raw: scheme + base64.b64encode(raw).decode(),
        st.sampled_from(["Basic ", "basic ", "Bearer ", ""]),
        st.one_of(
            st.binary(max_size=60),
            st.sampled_from([b"web-client:gcs_web-client-secret", b"web-client:", b":", b"\xff:"]),
        ),
    ),
)
PROPERTY = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _base(server: Server, kind: str) -> dict[str, list[str]]:
    """A valid token request to start from (so mutations reach the later checks)."""
    if kind == "exchange":
        return {
            "grant_type": ["authorization_code"],
            "code": [server.code()],
            "redirect_uri": ["https://client.example/callback"],
            "client_id": ["web-client"],
            "client_secret": ["gcs_web-client-secret"],
        }
    if kind == "refresh":
        tokens = server.tokens_for()
        assert tokens.refresh_token is not None
        return {
            "grant_type": ["refresh_token"],
            "refresh_token": [tokens.refresh_token],
            "client_id": ["web-client"],
            "client_secret": ["gcs_web-client-secret"],
        }
    return {}


def _mutated(
    params: dict[str, list[str]], mutations: dict[str, list[str] | None]
) -> dict[str, list[str]]:
    """``params`` with each mutation applied: a parameter replaced, added, or (None) removed."""
    for name, values in mutations.items():
        if values is None:
            params.pop(name, None)
        else:
            params[name] = values
    return params


MUTATIONS = st.dictionaries(
    st.one_of(st.sampled_from(NAMES), st.text(max_size=10)),
    st.one_of(st.none(), st.lists(VALUE, min_size=1, max_size=2)),
    max_size=3,
)


@PROPERTY
@given(
    kind=st.sampled_from(["exchange", "refresh", "nothing"]),
    mutations=MUTATIONS,
    authorization=HEADER,
)
def test_the_token_request_parser_raises_only_oauth_errors(kind, mutations, authorization) -> None:
    server = Server()
    params = _mutated(_base(server, kind), mutations)
    flat = {name: values if len(values) > 1 else values[0] for name, values in params.items()}
    try:
        response = server.token(authorization, **flat)
    except OAuthError as error:
        event(error.error)
        assert error.error and error.description
        assert 400 <= error.status < 500
    else:
        event("issued")
        assert isinstance(response, TokenResponse)
        assert server.tokens.db.access_tokens.get(digest(response.access_token)) is not None


@PROPERTY
@given(valid_start=st.booleans(), mutations=MUTATIONS, params=PARAMS)
def test_the_authorization_request_parser_raises_only_oauth_errors(
    valid_start, mutations, params
) -> None:
    server = Server()
    if valid_start:
        params = _mutated(server.authorization_query(), mutations)
    try:
        request = server.validate(params)
    except OAuthError as error:
        event(error.error)
        assert error.error and error.description
        assert 200 <= error.status < 500
    else:
        event("valid")
        assert request.application.client_id == params["client_id"][0]
