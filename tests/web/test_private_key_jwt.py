"""``private_key_jwt`` client authentication (RFC 7523 §2.2, §3): an assertion signed with the
client's registered key, for this server, short-lived, used once; keys given inline or served
at a ``jwks_uri`` fetched under the SSRF rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from grantly.app import create_app
from grantly.oauth.clock import FrozenClock
from grantly.oauth.registration import RegistrationError, validate
from tests.conftest import World, authorize_params, callback_params, consent, sign_in
from tests.document_server import DocumentServer, Served
from tests.dpop_tools import assertion, new_key
from tests.security_tools import configure

ISSUER = "http://127.0.0.1:8000"
TOKEN_URL = ISSUER + "/oauth/token"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _jwks(*keys: Any) -> str:
    return json.dumps({"keys": [{**k.as_dict(private=False), "kid": k.thumbprint()} for k in keys]})


def _code(http: TestClient, world: World) -> str:
    http.cookies.clear()
    sign_in(http, world.admin)
    return callback_params(consent(http, authorize_params(world.app)))["code"]


def _exchange(http: TestClient, world: World, code: str, signed: str, **extra: str) -> Any:
    return http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": world.app.redirect_uris[0],
            "client_assertion_type": JWT_BEARER,
            "client_assertion": signed,
            **extra,
        },
    )


@pytest.fixture
def key(world: World) -> Any:
    key = new_key()
    configure(world, world.app, auth_method="private_key_jwt", jwks=_jwks(key))
    return key


def test_an_assertion_signed_with_the_registered_key_authenticates(
    client: TestClient, world: World, clock: FrozenClock, key: Any
) -> None:
    signed = assertion(key, world.app.client_id, TOKEN_URL, now=clock.now(), kid=key.thumbprint())
    response = _exchange(client, world, _code(client, world), signed)
    assert response.status_code == 200, response.text
    # The issuer is an audience too (RFC 7523 §3), and the client_id may be named beside it.
    again = assertion(key, world.app.client_id, ISSUER, now=clock.now())
    second = _exchange(client, world, _code(client, world), again, client_id=world.app.client_id)
    assert second.status_code == 200, second.text


@pytest.mark.parametrize(
    "case", ["replayed", "other audience", "expired", "too long", "other key", "no jti", "iss"]
)
def test_a_bad_assertion_is_invalid_client(
    client: TestClient, world: World, clock: FrozenClock, key: Any, case: str
) -> None:
    now = clock.now()
    cid = world.app.client_id
    kwargs: dict[str, Any] = {"now": now}
    signer, aud = key, TOKEN_URL
    if case == "other audience":
        aud = "https://other.example/oauth/token"
    elif case == "expired":
        kwargs["now"] = now - 600
    elif case == "too long":
        kwargs["exp_in"] = 3600
    elif case == "other key":
        signer = new_key()
    elif case == "no jti":
        kwargs["jti"] = ""
    elif case == "iss":
        kwargs["iss"] = "someone-else"
    signed = assertion(signer, cid, aud, **kwargs)
    if case == "replayed":
        assert _exchange(client, world, _code(client, world), signed).status_code == 200
    code = _code(client, world)
    response = _exchange(client, world, code, signed)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    # The code was not spent on a client that failed to authenticate.
    good = assertion(key, cid, TOKEN_URL, now=now)
    assert _exchange(client, world, code, good).status_code == 200


def test_the_secret_no_longer_authenticates_and_others_cannot_use_assertions(
    client: TestClient, world: World, clock: FrozenClock, key: Any
) -> None:
    refused = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": _code(client, world),
            "redirect_uri": world.app.redirect_uris[0],
            "client_id": world.app.client_id,
            "client_secret": world.app.client_secret or "",
        },
    )
    assert refused.status_code == 401
    assert "private_key_jwt" in refused.json()["error_description"]
    other = assertion(new_key(), world.other_app.client_id, TOKEN_URL, now=clock.now())
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": JWT_BEARER,
            "client_assertion": other,
        },
    )
    assert response.status_code == 401
    assert "does not authenticate with private_key_jwt" in response.json()["error_description"]


def test_an_assertion_authenticates_at_revocation_and_introspection_too(
    client: TestClient, world: World, clock: FrozenClock, key: Any
) -> None:
    signed = assertion(key, world.app.client_id, TOKEN_URL, now=clock.now())
    token = _exchange(client, world, _code(client, world), signed).json()["access_token"]
    cid = world.app.client_id
    introspected = client.post(
        "/oauth/introspect",
        data={
            "token": token,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion(key, cid, ISSUER + "/oauth/introspect", now=clock.now()),
        },
    )
    assert introspected.status_code == 200, introspected.text
    assert introspected.json()["active"] is True
    revoked = client.post(
        "/oauth/revoke",
        data={
            "token": token,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion(key, cid, ISSUER + "/oauth/revoke", now=clock.now()),
        },
    )
    assert revoked.status_code == 200, revoked.text
    wrong = client.post(
        "/oauth/revoke",
        data={
            "token": token,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion(key, cid, ISSUER + "/oauth/introspect", now=clock.now()),
        },
    )
    assert wrong.status_code == 401


def test_a_wrong_assertion_type_is_invalid_request(
    client: TestClient, world: World, key: Any
) -> None:
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            "client_assertion": "x.y.z",
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_registration_wants_one_source_of_public_keys() -> None:
    base: dict[str, Any] = {
        "name": "Backend",
        "redirect_uris": ["https://client.example/cb"],
        "scopes": ["read"],
        "server_scopes": ("read", "write"),
    }
    private = json.dumps({"keys": [new_key().as_dict(private=True)]})
    for confidential, security, problem in (
        (False, {"auth_method": "private_key_jwt", "jwks": _jwks(new_key())}, "confidential"),
        (True, {"auth_method": "private_key_jwt"}, "one of them"),
        (True, {"auth_method": "private_key_jwt", "jwks": private}, "private key"),
        (True, {"auth_method": "private_key_jwt", "jwks_uri": "http://x.example/j"}, "https"),
        (True, {"jwks": _jwks(new_key())}, "only used with private_key_jwt"),
    ):
        with pytest.raises(RegistrationError) as raised:
            validate(confidential=confidential, security=security, **base)
        assert problem in " ".join(raised.value.problems)


# --- keys at a jwks_uri ----------------------------------------------------------------------


@pytest.fixture
def http(world: World, clock: FrozenClock, documents: DocumentServer) -> Iterator[TestClient]:
    settings = world.settings.model_copy(update={"cimd_allow_loopback": True})
    with TestClient(
        create_app(settings, clock=clock), base_url=ISSUER, follow_redirects=False
    ) as client:
        yield client


def test_keys_at_a_jwks_uri_are_fetched_and_a_rotation_is_heard(
    http: TestClient, world: World, clock: FrozenClock, documents: DocumentServer
) -> None:
    first, second = new_key(), new_key()
    url = documents.publish("/jwks.json", json.loads(_jwks(first)))
    configure(world, world.app, auth_method="private_key_jwt", jwks_uri=url)
    cid = world.app.client_id
    signed = assertion(first, cid, TOKEN_URL, now=clock.now(), kid=first.thumbprint())
    assert _exchange(http, world, _code(http, world), signed).status_code == 200
    assert (
        _exchange(
            http, world, _code(http, world), assertion(first, cid, TOKEN_URL, now=clock.now())
        ).status_code
        == 200
    )
    assert documents.requests.count("/jwks.json") == 1  # kept, as its Cache-Control says
    documents.publish("/jwks.json", json.loads(_jwks(second)))
    clock.advance(61)
    rotated = assertion(second, cid, TOKEN_URL, now=clock.now(), kid=second.thumbprint())
    response = _exchange(http, world, _code(http, world), rotated)
    assert response.status_code == 200, response.text
    assert documents.requests.count("/jwks.json") == 2


def test_a_jwks_uri_that_resolves_to_loopback_is_refused_before_any_connection(
    client: TestClient, world: World, clock: FrozenClock, documents: DocumentServer
) -> None:
    key = new_key()
    url = documents.publish("/jwks.json", json.loads(_jwks(key)))
    configure(world, world.app, auth_method="private_key_jwt", jwks_uri=url)
    signed = assertion(key, world.app.client_id, TOKEN_URL, now=clock.now())
    response = _exchange(client, world, _code(client, world), signed)
    assert response.status_code == 401
    assert "loopback" in response.json()["error_description"]
    assert documents.requests == []


def test_an_odd_assertion_is_invalid_client_never_a_server_error(
    client: TestClient, world: World, clock: FrozenClock, key: Any
) -> None:
    import base64

    from joserfc import jws

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    nested = "e30." + b64(b"[" * 1000) + ".x"
    nan = jws.serialize_compact(
        {"alg": "ES256"},
        b'{"iss": "%s", "sub": "%s", "aud": "%s", "exp": NaN, "jti": "n"}'
        % (world.app.client_id.encode(), world.app.client_id.encode(), TOKEN_URL.encode()),
        key,
    )
    listed = jws.serialize_compact({"alg": "ES256"}, b"[1]", key)
    for odd in (nested, nan, listed):
        response = _exchange(client, world, _code(client, world), odd)
        assert response.status_code in (400, 401), response.text
        assert response.json()["error"] in ("invalid_client", "invalid_request")


def test_a_jwks_uri_with_a_bad_port_is_refused_at_registration() -> None:
    with pytest.raises(RegistrationError):
        validate(
            name="Backend",
            redirect_uris=["https://client.example/cb"],
            confidential=True,
            scopes=["read"],
            server_scopes=("read", "write"),
            security={"auth_method": "private_key_jwt", "jwks_uri": "https://h.example:99999/"},
        )


def test_a_failing_jwks_uri_is_not_fetched_again_for_a_minute(
    http: TestClient, world: World, clock: FrozenClock, documents: DocumentServer
) -> None:
    """Anyone who knows the client_id could otherwise make each request wait on the host."""
    key = new_key()
    url = documents.serve("/jwks.json", Served(500, b"{}", {"Content-Type": "application/json"}))
    configure(world, world.app, auth_method="private_key_jwt", jwks_uri=url)
    cid = world.app.client_id
    for _ in range(2):
        refused = _exchange(
            http, world, _code(http, world), assertion(key, cid, TOKEN_URL, now=clock.now())
        )
        assert refused.status_code == 401
        assert "HTTP status 500" in refused.json()["error_description"]
    assert documents.requests.count("/jwks.json") == 1
    documents.publish("/jwks.json", json.loads(_jwks(key)))
    clock.advance(61)
    good = _exchange(
        http, world, _code(http, world), assertion(key, cid, TOKEN_URL, now=clock.now())
    )
    assert good.status_code == 200, good.text
