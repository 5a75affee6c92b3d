"""DPoP (RFC 9449): tokens bound to the client's key at the token endpoint, and honoured at the
API and the MCP endpoint only with a fresh proof by that key, for that request."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import OctKey

from grantly.app import create_app
from grantly.oauth.clock import FrozenClock
from grantly.oauth.pkce import new_verifier, s256
from tests.conftest import (
    REDIRECT_URI,
    Client,
    World,
    authorize_params,
    callback_params,
    consent,
    count_rows,
    sign_in,
)
from tests.dpop_tools import new_key, proof
from tests.security_tools import configure, public_client

ISSUER = "http://127.0.0.1:8000"
TOKEN_URL = ISSUER + "/oauth/token"
CREDENTIALS = "/api/2026-10-01/resources/api_public/credentials"
API_URL = ISSUER + CREDENTIALS


def _code(http: TestClient, world: World, app: Client | None = None, **extra: str) -> str:
    http.cookies.clear()
    sign_in(http, world.admin)
    return callback_params(consent(http, authorize_params(app or world.app, **extra)))["code"]


def _token_request(http: TestClient, data: dict[str, str], dpop: str | None = None) -> Any:
    headers = {"DPoP": dpop} if dpop is not None else {}
    return http.post("/oauth/token", data=data, headers=headers)


def _code_data(world: World, code: str, app: Client | None = None, **extra: str) -> dict[str, str]:
    app = app or world.app
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": app.redirect_uris[0] if app.client_secret is None else REDIRECT_URI,
        "client_id": app.client_id,
        **extra,
    }
    if app.client_secret:
        data["client_secret"] = app.client_secret
    return data


def _bound(http: TestClient, world: World, clock: FrozenClock, key: Any) -> dict[str, Any]:
    code = _code(http, world)
    response = _token_request(
        http, _code_data(world, code), proof(key, "POST", TOKEN_URL, iat=clock.now())
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _api(
    http: TestClient, token: str, dpop: str | None, scheme: str = "DPoP", path: str = CREDENTIALS
) -> Any:
    headers = {"Authorization": f"{scheme} {token}"}
    if dpop is not None:
        headers["DPoP"] = dpop
    return http.get(path, headers=headers)


def _dpop_challenge(response: Any) -> str:
    challenges = [c for c in response.headers.get_list("www-authenticate") if c.startswith("DPoP")]
    assert len(challenges) == 1, response.headers
    return challenges[0]


# --- the token endpoint binds ---------------------------------------------------------------


def test_a_proof_at_the_token_endpoint_binds_the_token_to_the_key(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    key = new_key()
    body = _bound(client, world, clock, key)
    assert body["token_type"] == "DPoP"
    facts = client.post(
        "/oauth/introspect",
        data={
            "token": body["access_token"],
            "client_id": world.app.client_id,
            "client_secret": world.app.client_secret,
        },
    ).json()
    assert facts["token_type"] == "DPoP"
    assert facts["cnf"] == {"jkt": key.thumbprint()}


def test_without_a_proof_the_token_is_a_bearer_token(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    response = _token_request(client, _code_data(world, _code(client, world)))
    assert response.json()["token_type"] == "Bearer"
    assert _api(client, response.json()["access_token"], None, "Bearer").status_code == 200


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"htm": "GET"}, "htm"),
        ({"htu": ISSUER + "/oauth/revoke"}, "htu"),
        ({"iat_offset": -600}, "iat"),
        ({"iat_offset": 600}, "iat"),
        ({"typ": "JWT"}, "typ"),
        ({"no_jti": True}, "jti"),
        ({"private": True}, "public jwk"),
    ],
)
def test_a_bad_proof_is_invalid_dpop_proof_and_the_code_survives(
    client: TestClient, world: World, clock: FrozenClock, change: dict[str, Any], message: str
) -> None:
    key = new_key()
    code = _code(client, world)
    header: dict[str, Any] = {}
    if change.get("typ"):
        header["typ"] = change["typ"]
    if change.get("private"):
        header["jwk"] = key.as_dict(private=True)
    bad = proof(
        key,
        change.get("htm", "POST"),
        change.get("htu", TOKEN_URL),
        iat=clock.now() + change.get("iat_offset", 0),
        header=header,
    )
    if change.get("no_jti"):
        bad = proof(key, "POST", TOKEN_URL, iat=clock.now(), jti="")
    response = _token_request(client, _code_data(world, code), bad)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_dpop_proof"
    assert message in response.json()["error_description"]
    # A refused proof decided nothing about the code: a good one still redeems it.
    good = _token_request(client, _code_data(world, code), proof(key, "POST", TOKEN_URL))
    assert good.status_code == 200, good.text


def test_a_proof_that_is_not_a_jws_or_is_signed_by_another_key_is_refused(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    key, other = new_key(), new_key()
    code = _code(client, world)
    forged = proof(other, "POST", TOKEN_URL, header={"jwk": key.as_dict(private=False)})
    claims = {"jti": "j", "htm": "POST", "htu": TOKEN_URL, "iat": clock.now()}
    public = key.as_dict(private=False)
    symmetric = jwt.encode(
        {"typ": "dpop+jwt", "alg": "HS256", "jwk": public}, claims, OctKey.generate_key(256)
    )
    unsigned = (
        ".".join(
            base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
            for part in ({"typ": "dpop+jwt", "alg": "none", "jwk": public}, claims)
        )
        + "."
    )
    for bad in ("not-a-jwt", "a.b.c", forged, symmetric, unsigned):
        response = _token_request(client, _code_data(world, code), bad)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_dpop_proof", response.text
    two = client.post(
        "/oauth/token",
        data=_code_data(world, code),
        headers=[("DPoP", proof(key, "POST", TOKEN_URL)), ("DPoP", proof(key, "POST", TOKEN_URL))],
    )
    assert two.json()["error"] == "invalid_dpop_proof"


def test_a_replayed_proof_is_refused_at_the_token_endpoint(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    key = new_key()
    once = proof(key, "POST", TOKEN_URL, iat=clock.now())
    first = _token_request(client, _code_data(world, _code(client, world)), once)
    assert first.status_code == 200
    again = _token_request(client, _code_data(world, _code(client, world)), once)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_dpop_proof"
    assert "used before" in again.json()["error_description"]
    assert count_rows(world.settings, "used_jtis") == 1


def test_an_application_that_requires_dpop_gets_no_bearer_token(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    configure(world, world.app, dpop="required")
    code = _code(client, world)
    refused = _token_request(client, _code_data(world, code))
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_dpop_proof"
    assert "requires DPoP" in refused.json()["error_description"]
    bound = _token_request(client, _code_data(world, code), proof(new_key(), "POST", TOKEN_URL))
    assert bound.json()["token_type"] == "DPoP"


def test_a_company_token_can_be_bound_and_never_expires(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    key = new_key()
    code = _code(client, world, resource_owner_type="company")
    body = _token_request(
        client, _code_data(world, code), proof(key, "POST", TOKEN_URL, iat=clock.now())
    ).json()
    assert body["token_type"] == "DPoP"
    assert "expires_in" not in body and "refresh_token" not in body
    token = body["access_token"]
    assert _api(client, token, None, "Bearer").status_code == 401
    ok = _api(client, token, proof(key, "GET", API_URL, token=token, iat=clock.now()))
    assert ok.status_code == 200, ok.text
    assert ok.json()["data"][0]["employee_id"] is None


# --- refresh tokens of public clients are bound ---------------------------------------------


def _public_tokens(http: TestClient, world: World, app: Client, key: Any) -> dict[str, Any]:
    verifier = new_verifier()
    code = _code(
        http,
        world,
        app,
        redirect_uri=app.redirect_uris[0],
        code_challenge=s256(verifier),
        code_challenge_method="S256",
    )
    response = _token_request(
        http,
        _code_data(world, code, app, code_verifier=verifier),
        proof(key, "POST", TOKEN_URL),
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_public_clients_refresh_token_needs_a_proof_by_the_same_key(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    app = public_client(world)
    key = new_key()
    body = _public_tokens(client, world, app, key)
    refresh = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    refresh["client_id"] = app.client_id
    for dpop in (None, proof(new_key(), "POST", TOKEN_URL)):
        refused = _token_request(client, refresh, dpop)
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_grant"
        assert "bound to a DPoP key" in refused.json()["error_description"]
    renewed = _token_request(client, refresh, proof(key, "POST", TOKEN_URL))
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["token_type"] == "DPoP"


def test_a_confidential_clients_refresh_token_is_not_bound(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    body = _bound(client, world, clock, new_key())
    refreshed = _token_request(
        client,
        {
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": world.app.client_id,
            "client_secret": world.app.client_secret or "",
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["token_type"] == "Bearer"


# --- the API honours a bound token only with its proof --------------------------------------


def test_the_api_takes_a_bound_token_with_a_fresh_proof_for_the_request(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    key = new_key()
    token = _bound(client, world, clock, key)["access_token"]
    good = proof(key, "GET", API_URL, token=token, iat=clock.now())
    assert _api(client, token, good).status_code == 200
    # RFC 9449 §11.1: the same proof again is a replay.
    replayed = _api(client, token, good)
    assert replayed.status_code == 401
    assert 'error="invalid_dpop_proof"' in _dpop_challenge(replayed)
    # §4.3: the query is not part of htu.
    query = _api(
        client,
        token,
        proof(key, "GET", API_URL, token=token),
        path=CREDENTIALS + "?page=1",
    )
    assert query.status_code == 200, query.text


@pytest.mark.parametrize(
    "case",
    ["as bearer", "no proof", "other method", "other url", "no ath", "other key", "stale"],
)
def test_the_api_refuses_a_bound_token_without_its_proof(
    client: TestClient, world: World, clock: FrozenClock, case: str
) -> None:
    key = new_key()
    token = _bound(client, world, clock, key)["access_token"]
    now = clock.now()
    scheme, dpop = "DPoP", None
    if case == "as bearer":
        scheme = "Bearer"
    elif case == "other method":
        dpop = proof(key, "POST", API_URL, token=token, iat=now)
    elif case == "other url":
        dpop = proof(
            key, "GET", ISSUER + "/api/2026-10-01/resources/employees/employees", token=token
        )
    elif case == "no ath":
        dpop = proof(key, "GET", API_URL, iat=now)
    elif case == "other key":
        dpop = proof(new_key(), "GET", API_URL, token=token, iat=now)
    elif case == "stale":
        dpop = proof(key, "GET", API_URL, token=token, iat=now - 3600)
    response = _api(client, token, dpop, scheme)
    assert response.status_code == 401, response.text
    challenge = _dpop_challenge(response)
    assert challenge.startswith('DPoP algs="ES256')
    expected = "invalid_token" if case == "as bearer" else "invalid_dpop_proof"
    assert f'error="{expected}"' in challenge
    assert response.json()["error"] == expected


def test_a_bearer_token_sent_with_the_dpop_scheme_is_refused(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    token = _token_request(client, _code_data(world, _code(client, world))).json()["access_token"]
    response = _api(client, token, proof(new_key(), "GET", API_URL, token=token))
    assert response.status_code == 401
    assert "not DPoP-bound" in response.json()["error_description"]


# --- server nonces ----------------------------------------------------------------------------


@pytest.fixture
def nonce_client(world: World, clock: FrozenClock) -> Iterator[TestClient]:
    settings = world.settings.model_copy(update={"dpop_nonces": True})
    with TestClient(
        create_app(settings, clock=clock), base_url=ISSUER, follow_redirects=False
    ) as http:
        yield http


def test_with_nonces_on_a_proof_needs_the_servers_nonce(
    nonce_client: TestClient, world: World, clock: FrozenClock
) -> None:
    http = nonce_client
    key = new_key()
    code = _code(http, world)
    first = _token_request(http, _code_data(world, code), proof(key, "POST", TOKEN_URL))
    assert first.status_code == 400
    assert first.json()["error"] == "use_dpop_nonce"
    nonce = first.headers["dpop-nonce"]
    wrong = _token_request(http, _code_data(world, code), proof(key, "POST", TOKEN_URL, nonce="x"))
    assert wrong.json()["error"] == "use_dpop_nonce"
    body = _token_request(http, _code_data(world, code), proof(key, "POST", TOKEN_URL, nonce=nonce))
    assert body.status_code == 200, body.text
    assert body.headers["dpop-nonce"] == nonce
    token = body.json()["access_token"]
    without = _api(http, token, proof(key, "GET", API_URL, token=token))
    assert without.status_code == 401
    assert 'error="use_dpop_nonce"' in _dpop_challenge(without)
    assert without.headers["dpop-nonce"] == nonce
    ok = _api(http, token, proof(key, "GET", API_URL, token=token, nonce=nonce))
    assert ok.status_code == 200, ok.text
    # A nonce lasts its window and the next; then the server gives a new one.
    clock.advance(600)
    stale = _api(http, token, proof(key, "GET", API_URL, token=token, nonce=nonce, iat=clock.now()))
    assert stale.status_code == 401
    assert stale.headers["dpop-nonce"] != nonce


# --- the MCP endpoint ------------------------------------------------------------------------


def test_the_mcp_endpoint_takes_a_bound_token_with_its_proof_only(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    key = new_key()
    code = _code(client, world, resource=ISSUER + "/mcp", scope="read")
    body = _token_request(
        client, _code_data(world, code), proof(key, "POST", TOKEN_URL, iat=clock.now())
    ).json()
    token = body["access_token"]
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "whoami", "arguments": {}},
    }
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    as_bearer = client.post(
        "/mcp", json=call, headers={**headers, "Authorization": f"Bearer {token}"}
    )
    assert as_bearer.status_code == 401
    assert 'error="invalid_token"' in _dpop_challenge(as_bearer)
    wrong_url = client.post(
        "/mcp",
        json=call,
        headers={
            **headers,
            "Authorization": f"DPoP {token}",
            "DPoP": proof(key, "POST", API_URL, token=token),
        },
    )
    assert wrong_url.status_code == 401
    assert 'error="invalid_dpop_proof"' in _dpop_challenge(wrong_url)
    good = client.post(
        "/mcp",
        json=call,
        headers={
            **headers,
            "Authorization": f"DPoP {token}",
            "DPoP": proof(key, "POST", ISSUER + "/mcp", token=token),
        },
    )
    assert good.status_code == 200, good.text
    assert "admin@acme.example" in good.text


# --- what review found: writes, odd input, RSA keys, token info ------------------------------


def test_a_writing_api_call_with_a_bound_token_is_answered(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    """The proof's jti is written in the request's own unit: a unit of its own, inside the
    write unit a changing call holds, would wait on SQLite's writer forever."""
    key = new_key()
    code = _code(client, world, resource_owner_type="company")
    token = _token_request(
        client, _code_data(world, code), proof(key, "POST", TOKEN_URL, iat=clock.now())
    ).json()["access_token"]
    path = f"/api/2026-10-01/resources/employees/employees/{world.employee.id}"
    for _ in range(2):
        changed = client.put(
            path,
            json={"last_name": "Bound"},
            headers={
                "Authorization": f"DPoP {token}",
                "DPoP": proof(key, "PUT", ISSUER + path, token=token, iat=clock.now()),
            },
        )
        assert changed.status_code == 200, changed.text
    assert changed.json()["last_name"] == "Bound"


def test_a_proof_signed_with_an_rsa_key_is_accepted(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    for alg in ("RS256", "PS256"):
        key = new_key("RSA")
        response = _token_request(
            client,
            _code_data(world, _code(client, world)),
            proof(key, "POST", TOKEN_URL, iat=clock.now(), alg=alg),
        )
        assert response.status_code == 200, response.text
        assert response.json()["token_type"] == "DPoP"


def _signed(key: Any, header: dict[str, Any], payload: bytes) -> str:
    from joserfc import jws

    return jws.serialize_compact({**header, "jwk": key.as_dict(private=False)}, payload, key)


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 2000,
        b'"a string"',
        b"[1, 2]",
        json.dumps({"jti": "j", "htm": "POST", "htu": "https://[x/oauth/token", "iat": 1}).encode(),
        json.dumps({"jti": "j", "htm": "POST", "htu": TOKEN_URL, "iat": 1.5e300}).encode(),
        json.dumps({"jti": ["j"], "htm": "POST", "htu": TOKEN_URL, "iat": 1}).encode(),
    ],
)
def test_an_odd_proof_is_invalid_dpop_proof_never_a_server_error(
    client: TestClient, world: World, clock: FrozenClock, payload: bytes
) -> None:
    key = new_key()
    bad = _signed(key, {"typ": "dpop+jwt", "alg": "ES256"}, payload)
    response = _token_request(client, _code_data(world, _code(client, world)), bad)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_dpop_proof"


def test_a_nonce_or_ath_outside_ascii_is_refused_not_a_server_error(
    nonce_client: TestClient, world: World, clock: FrozenClock
) -> None:
    http = nonce_client
    key = new_key()
    code = _code(http, world)
    odd = _token_request(http, _code_data(world, code), proof(key, "POST", TOKEN_URL, nonce="é"))
    assert odd.status_code == 400 and odd.json()["error"] == "use_dpop_nonce"
    nonce = odd.headers["dpop-nonce"]
    token = _token_request(
        http, _code_data(world, code), proof(key, "POST", TOKEN_URL, nonce=nonce)
    ).json()["access_token"]
    response = _api(http, token, proof(key, "GET", API_URL, nonce=nonce, ath="é"))
    assert response.status_code == 401
    assert 'error="invalid_dpop_proof"' in _dpop_challenge(response)


def test_token_info_wants_the_proof_of_a_bound_token(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    key = new_key()
    token = _bound(client, world, clock, key)["access_token"]
    url = ISSUER + "/oauth/token/info"
    assert (
        client.get("/oauth/token/info", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
    info = client.get(
        "/oauth/token/info",
        headers={"Authorization": f"DPoP {token}", "DPoP": proof(key, "GET", url, token=token)},
    )
    assert info.status_code == 200, info.text
    assert info.json()["resource_owner_type"] == "user"
