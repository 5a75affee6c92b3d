"""JWT access tokens (RFC 9068): signed by the active key published at jwks_uri, checked by
anyone offline, and still revoked at once for Grantly's own API and introspection."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from joserfc import jws, jwt
from joserfc.jwk import KeySet

from grantly.oauth.clock import FrozenClock
from tests.conftest import World, authorize_params, callback_params, consent, sign_in
from tests.dpop_tools import new_key, proof
from tests.security_tools import configure

ISSUER = "http://127.0.0.1:8000"
CREDENTIALS = "/api/2026-10-01/resources/api_public/credentials"


def _token(http: TestClient, world: World, dpop: str | None = None, **extra: str) -> dict[str, Any]:
    http.cookies.clear()
    sign_in(http, world.admin)
    code = callback_params(consent(http, authorize_params(world.app, **extra)))["code"]
    headers = {"DPoP": dpop} if dpop else {}
    response = http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": world.app.redirect_uris[0],
            "client_id": world.app.client_id,
            "client_secret": world.app.client_secret or "",
        },
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _verified(http: TestClient, token: str) -> Any:
    keys = KeySet.import_key_set(http.get("/oauth/jwks").json())
    return jwt.decode(token, keys, algorithms=["ES256", "RS256"])


def test_an_application_that_asks_for_jwts_gets_rfc_9068_access_tokens(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    configure(world, world.app, access_token_format="jwt")
    body = _token(client, world)
    token = body["access_token"]
    header = jws.extract_compact(token.encode()).protected
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert header["kid"] in [k["kid"] for k in client.get("/oauth/jwks").json()["keys"]]
    claims = _verified(client, token).claims
    assert claims["iss"] == ISSUER
    assert claims["aud"] == ISSUER + "/api"
    assert claims["sub"] == f"user:{world.admin.id}"
    assert claims["client_id"] == world.app.client_id
    assert claims["exp"] - claims["iat"] == body["expires_in"] == 3600
    assert claims["iat"] == clock.now()
    assert claims["scope"] == "read write"
    assert claims["company_id"] == world.company_a
    assert claims["resource_owner_type"] == "user"
    assert len(claims["jti"]) >= 16
    assert "cnf" not in claims
    # The refresh token stays opaque; refreshing gives another JWT with a new jti.
    refreshed = client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": world.app.client_id,
            "client_secret": world.app.client_secret or "",
        },
    ).json()
    assert body["refresh_token"].startswith("grt_")
    assert _verified(client, refreshed["access_token"]).claims["jti"] != claims["jti"]


def test_a_jwt_names_the_resources_it_was_asked_for_and_its_dpop_key(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    configure(world, world.app, access_token_format="jwt")
    key = new_key()
    body = _token(
        client,
        world,
        proof(key, "POST", ISSUER + "/oauth/token", iat=clock.now()),
        resource=ISSUER + "/mcp",
    )
    claims = _verified(client, body["access_token"]).claims
    assert claims["aud"] == ISSUER + "/mcp"
    assert claims["cnf"] == {"jkt": key.thumbprint()}
    assert body["token_type"] == "DPoP"


def test_a_revoked_jwt_stops_working_at_once_at_the_api_and_in_introspection(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    configure(world, world.app, access_token_format="jwt")
    token = _token(client, world)["access_token"]
    auth = {"client_id": world.app.client_id, "client_secret": world.app.client_secret or ""}
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get(CREDENTIALS, headers=bearer).status_code == 200
    facts = client.post("/oauth/introspect", data={"token": token, **auth}).json()
    assert facts["active"] is True and facts["aud"] == ISSUER + "/api"
    assert client.post("/oauth/revoke", data={"token": token, **auth}).status_code == 200
    assert client.get(CREDENTIALS, headers=bearer).status_code == 401
    assert client.post("/oauth/introspect", data={"token": token, **auth}).json() == {
        "active": False
    }


def test_a_company_token_stays_opaque(client: TestClient, world: World) -> None:
    configure(world, world.app, access_token_format="jwt")
    body = _token(client, world, resource_owner_type="company")
    assert body["access_token"].startswith("gat_")
    assert "expires_in" not in body


def test_an_opaque_application_gets_opaque_tokens(client: TestClient, world: World) -> None:
    assert _token(client, world)["access_token"].startswith("gat_")


def test_a_token_signed_by_a_rotated_out_key_still_verifies_and_works(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    configure(world, world.app, access_token_format="jwt")
    old = _token(client, world)["access_token"]
    old_kid = jws.extract_compact(old.encode()).protected["kid"]
    app = client.app
    ring = app.state.services.keys  # type: ignore[attr-defined]
    clock.advance(1)  # a key made in the same second as the first would tie with it
    client.portal.call(ring.rotate, 0)  # type: ignore[union-attr]
    clock.advance(31)  # past the signer's cache
    new = _token(client, world)["access_token"]
    new_kid = jws.extract_compact(new.encode()).protected["kid"]
    assert new_kid != old_kid
    published = [k["kid"] for k in client.get("/oauth/jwks").json()["keys"]]
    assert old_kid in published and new_kid in published
    assert _verified(client, old).claims["sub"] == _verified(client, new).claims["sub"]
    assert client.get(CREDENTIALS, headers={"Authorization": f"Bearer {old}"}).status_code == 200


def test_with_no_active_signing_key_a_jwt_request_is_503_and_nothing_is_spent(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    """Every key retired by force (the operator's doing): a JWT cannot be signed, and no key
    can be made inside the request's own write unit; the request is answered 503, its code
    left unused."""
    configure(world, world.app, access_token_format="jwt")
    ring = client.app.state.services.keys  # type: ignore[attr-defined]
    for key in client.portal.call(ring.keys):  # type: ignore[union-attr]
        client.portal.call(ring.retire, key.kid, 0, True)  # type: ignore[union-attr]
    client.cookies.clear()
    sign_in(client, world.admin)
    code = callback_params(consent(client, authorize_params(world.app)))["code"]
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": world.app.redirect_uris[0],
        "client_id": world.app.client_id,
        "client_secret": world.app.client_secret or "",
    }
    refused = client.post("/oauth/token", data=data)
    assert refused.status_code == 503, refused.text
    client.portal.call(ring.rotate, 0)  # type: ignore[union-attr]
    assert client.post("/oauth/token", data=data).status_code == 200
