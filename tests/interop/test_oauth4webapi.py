"""panva's ``oauth4webapi`` (npm, pinned in tests/interop/oauth4webapi/package-lock.json),
unchanged, against a real ``grantly serve``: the strict client issue 16 is judged by.

Each scenario is a node script in tests/interop/oauth4webapi/ that does what the library's
documentation shows, with one deviation: ``allowInsecureRequests``, since the issuer here is
``http://127.0.0.1:PORT``. pytest starts the server, registers the application with
``grantly apps create`` as an operator would, runs the script, plays the person at the consent
page when the script prints an authorization URL (tests/interop/person.py), and asserts on the
one JSON line the script ends with: what the library accepted, what the server answered, and
the wire as the script saw it (lib.mjs wraps the global fetch the library calls, to note each
exchange and to refuse any address but loopback; the library itself is not touched).

- DPoP (RFC 9449) with server nonces on: code exchange, refresh and API call each with a proof,
  each retried on ``use_dpop_nonce``; the bound token refused as Bearer (§7.2).
- Pushed authorization requests (RFC 9126) with PKCE, for an application that requires them.
- ``private_key_jwt`` client authentication (RFC 7523 §2.2) with a key made by the library.
- The client credentials grant (RFC 6749 §4.4), bearer and DPoP-bound.
- ``validateJwtAccessToken`` (RFC 9068) of JWT access tokens against ``jwks_uri``, and a key
  rotation during which tokens signed by the old key stay valid.

``make test`` installs the package (``npm ci`` in tests/interop/oauth4webapi).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    LiveServer,
    World,
    copy_world,
    drop_world,
    free_port,
    make_settings,
    server_env,
    sign_in,
    start_server,
    stop_server,
)
from tests.interop.person import approve, query_of

pytestmark = pytest.mark.live

SCRIPTS = Path(__file__).resolve().parent / "oauth4webapi"
# Never followed: the person hands the redirect back to the script, whose host is loopback.
REDIRECT_URI = "http://127.0.0.1:9/callback"
API_VERSION = "2026-10-01"
SCENARIO_TIMEOUT = 20  # seconds, for the whole conversation with one script

Answer = Callable[[dict[str, Any]], dict[str, Any]]


# --- the harness --------------------------------------------------------------------------


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("node is not on PATH: these tests run oauth4webapi in node (>= 20)")
    if not (SCRIPTS / "node_modules" / "oauth4webapi" / "package.json").is_file():
        pytest.fail(f"oauth4webapi is not installed: `make test` runs `npm ci` in {SCRIPTS}")
    return found


def grantly(server: LiveServer, *args: str) -> dict[str, Any]:
    """``grantly … --json`` against the server's database, its own words if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "grantly.cli", *args, "--json"],
        env=server_env(server.world.settings, server.url),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.fail(
            f"grantly {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return dict(json.loads(done.stdout))


def create_app(
    server: LiveServer, name: str, *options: str, public: bool = False
) -> dict[str, Any]:
    """An application of company A, registered by the operator (``grantly apps create``)."""
    args = [
        "apps",
        "create",
        "--company",
        str(server.world.company_a),
        "--name",
        name,
        "--redirect-uri",
        REDIRECT_URI,
        "--scope",
        "read",
        "--scope",
        "write",
    ]
    return grantly(server, *args, *(["--public"] if public else []), *options)


def scenario_config(server: LiveServer, app: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "issuer": server.url,
        "client_id": app["client_id"],
        "client_secret": app.get("client_secret"),
        "redirect_uri": REDIRECT_URI,
        "api_url": f"{server.url}/api/{API_VERSION}/resources/api_public/credentials",
        "timeout_ms": (SCENARIO_TIMEOUT - 5) * 1000,
        **extra,
    }


def person_allows(server: LiveServer) -> Answer:
    """The admin of company A signs in and presses Allow; the script gets the redirect."""
    return lambda asked: {"location": approve(server.url, asked["url"], server.world.admin)}


def run_scenario(
    server: LiveServer,
    script: str,
    config: dict[str, Any],
    answers: dict[str, Answer],
    tmp_path: Path,
) -> dict[str, Any]:
    """Run ``script`` with ``config``; answer each of its questions with ``answers[kind]``;
    return its result, or fail with its error, what it saw on the wire and the server's log."""
    stderr_path = tmp_path / f"{script}-{time.monotonic_ns()}.stderr"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            [node(), str(SCRIPTS / script), json.dumps(config)],
            cwd=SCRIPTS,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert process.stdin is not None and process.stdout is not None
    final: dict[str, Any] | None = None
    try:
        for line in process.stdout:
            message = json.loads(line)
            if "ask" in message:
                reply = answers[message["ask"]](message)
                try:
                    process.stdin.write(json.dumps(reply) + "\n")
                    process.stdin.flush()
                except BrokenPipeError:
                    pass  # it gave up meanwhile: its last line says why
            else:
                final = message
                break
        process.wait(timeout=SCENARIO_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if final is None or "result" not in final or process.returncode != 0:
        pytest.fail(
            f"{script} failed (exit {process.returncode}):\n"
            f"{json.dumps(final, indent=2)}\n"
            f"--- node stderr:\n{stderr_path.read_text()}\n"
            f"--- server log (tail):\n{_tail(server.log_path)}"
        )
    return dict(final["result"], wire=final["wire"])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def token_requests(wire: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in wire if e["method"] == "POST" and e["path"] == "/oauth/token"]


def assert_refused_as_bearer(answer: dict[str, Any]) -> None:
    """RFC 9449 §7.2: a DPoP-bound token presented as a Bearer token is refused: 401 and,
    as the library parsed them, a DPoP challenge naming the algorithms (§7.1) and an error."""
    assert answer["status"] == 401, answer
    dpop = [c for c in answer["challenges"] if c["scheme"] == "dpop"]
    assert dpop, answer["challenges"]
    assert "ES256" in dpop[0]["parameters"]["algs"].split()
    errors = {c["parameters"].get("error") for c in answer["challenges"]}
    assert errors & {"invalid_token", "invalid_dpop_proof"}, answer["challenges"]


@pytest.fixture
def server(
    tmp_path: Path, seeded_template: tuple[Path, World], monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveServer]:
    """A server of each test's own, with DPoP nonces on (RFC 9449 §8: a server may demand
    them; the strictest setting is what a client must cope with). Each test has its own, so
    one that hangs or breaks it fails alone, and ``restart`` can replace its process on the
    same address and database."""
    monkeypatch.setenv("GRANTLY_DPOP_NONCES", "true")
    url = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(tmp_path, issuer=url)
    world = copy_world(seeded_template, settings)
    log_path = tmp_path / "server.log"
    try:
        server = LiveServer(url, world, start_server(settings, url, log_path), log_path)
        try:
            yield server
        finally:
            stop_server(server.process)
    finally:
        drop_world(settings)


def restart(server: LiveServer, tmp_path: Path) -> None:
    """Stop the process and start another on the same address and database: a deploy."""
    stop_server(server.process)
    server.log_path = tmp_path / f"server-{time.monotonic_ns()}.log"
    server.process = start_server(server.world.settings, server.url, server.log_path)


# --- 1. DPoP-bound authorization code, refresh and API call, with server nonces -----------


def test_dpop_bound_code_flow_with_server_nonces(server: LiveServer, tmp_path: Path) -> None:
    """RFC 9449: a public client (so its refresh token is bound too, §5) proves its key at the
    token endpoint (§5), on refresh and at the API (§7), each time retrying once with the nonce
    the server demands (§8, §9); the bound token is refused without its proof (§7.2)."""
    app = create_app(server, "oauth4webapi DPoP", public=True)

    seen = run_scenario(
        server,
        "dpop_code_flow.mjs",
        scenario_config(server, app),
        {"authorize": person_allows(server)},
        tmp_path,
    )

    assert "ES256" in seen["dpop_signing_alg_values_supported"]
    # The wire's token_type, before the library lowercases it: RFC 9449 §5 says "DPoP".
    exchanges = [e for e in token_requests(seen["wire"]) if e["status"] == 200]
    assert [e["body"]["token_type"] for e in exchanges[:2]] == ["DPoP", "DPoP"]
    assert seen["token"]["token_type"] == "dpop"
    assert seen["token"]["has_refresh_token"]
    assert seen["refreshed"]["token_type"] == "dpop"
    assert seen["refreshed"]["new_refresh_token"] and seen["refreshed"]["new_access_token"]
    # Nonces on: the first proof, made without one, was answered use_dpop_nonce and retried.
    assert seen["nonce_retries"]["token"] == 1
    first = token_requests(seen["wire"])[0]
    assert first["status"] == 400 and first["dpop_nonce"]
    assert first["body"]["error"] == "use_dpop_nonce"
    assert all(e["dpop_proof"] for e in token_requests(seen["wire"]))
    # The API took the bound token with its proof, as the person who allowed.
    assert seen["api"]["status"] == 200, seen["api"]
    credential = seen["api"]["body"]["data"][0]
    assert credential["company_id"] == server.world.company_a
    assert credential["email"] == server.world.admin.email
    with_proof = [e for e in seen["wire"] if e["path"].startswith("/api/") and e["dpop_proof"]]
    assert with_proof and with_proof[-1]["status"] == 200
    assert all(e["authorization"] == "DPoP" for e in with_proof)
    # The same token as a Bearer token: refused, with a DPoP challenge (RFC 9449 §7.1, §7.2).
    assert_refused_as_bearer(seen["as_bearer"])
    # The bound refresh token with another key's proof: refused.
    assert seen["stolen_refresh"]["refused"], seen["stolen_refresh"]
    assert seen["stolen_refresh"]["error"] in ("invalid_grant", "invalid_dpop_proof")


# --- 2. Pushed authorization requests with PKCE --------------------------------------------


def signed_in_answer(server: LiveServer, authorization_url: str) -> httpx.Response:
    """The authorization endpoint's answer to ``authorization_url`` for the admin, signed in."""
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=10) as browser:
        sign_in(browser, server.world.admin)
        return browser.get(authorization_url)


def test_pushed_authorization_request_with_pkce(server: LiveServer, tmp_path: Path) -> None:
    """RFC 9126: the library pushes the authorization parameters with client_secret_basic
    (§2.1), gets a single-use request_uri valid 60 s (§2.2), sends the person with only
    client_id and request_uri (§4); the used request_uri is refused, and so is a plain
    authorization request, since the application requires pushed ones (§6)."""
    app = create_app(server, "oauth4webapi PAR", "--require-par")
    assert app["require_par"] is True
    asked: list[str] = []

    def allow(message: dict[str, Any]) -> dict[str, Any]:
        asked.append(message["url"])
        return person_allows(server)(message)

    seen = run_scenario(
        server, "par.mjs", scenario_config(server, app), {"authorize": allow}, tmp_path
    )

    assert seen["pushed_authorization_request_endpoint"] == f"{server.url}/oauth/par"
    assert seen["pushed"]["expires_in"] == 60
    assert seen["pushed"]["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    pushed = [e for e in seen["wire"] if e["path"] == "/oauth/par"]
    assert [(e["status"], e["authorization"]) for e in pushed] == [(201, "Basic")]
    front = httpx.URL(asked[0])
    assert set(front.params) == {"client_id", "request_uri"}
    assert seen["token"]["token_type"] == "bearer"
    assert seen["api"]["status"] == 200, seen["api"]
    assert seen["api"]["body"]["data"][0]["email"] == server.world.admin.email
    # RFC 9126 §4: the request_uri was used, and cannot be trusted to say where to redirect.
    reused = signed_in_answer(server, asked[0])
    assert reused.status_code == 400, reused.text
    assert 'name="decision"' not in reused.text
    plain = httpx.URL(f"{server.url}/oauth/authorize").copy_merge_params(
        {
            "client_id": app["client_id"],
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": "read",
            "state": "plain",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        }
    )
    # RFC 9126 §6: this application's requests must be pushed; a plain one is an error.
    refused = signed_in_answer(server, str(plain))
    assert refused.status_code == 302, refused.text
    assert query_of(refused.headers["location"])["error"] == "invalid_request"


# --- 3. private_key_jwt client authentication -----------------------------------------------


def test_private_key_jwt_client_authentication(server: LiveServer, tmp_path: Path) -> None:
    """RFC 7523 §2.2: the application is registered with the public half of a key the
    library made (``--jwks FILE``); the library's assertions authenticate it at the token
    endpoint for the code exchange and for a refresh, each with a new jti (§3); one signed by
    another key is refused."""
    registered: list[dict[str, Any]] = []

    def register(message: dict[str, Any]) -> dict[str, Any]:
        jwks = tmp_path / "client-jwks.json"
        jwks.write_text(json.dumps(message["jwks"]))
        app = create_app(
            server,
            "oauth4webapi private_key_jwt",
            "--auth-method",
            "private_key_jwt",
            "--jwks",
            str(jwks),
        )
        registered.append(app)
        return {"client_id": app["client_id"]}

    seen = run_scenario(
        server,
        "private_key_jwt.mjs",
        scenario_config(server, {"client_id": None}),
        {"register": register, "authorize": person_allows(server)},
        tmp_path,
    )

    assert registered[0]["token_endpoint_auth_method"] == "private_key_jwt"
    assert registered[0]["confidential"] is True
    assert "private_key_jwt" in seen["token_endpoint_auth_methods_supported"]
    assert "ES256" in seen["token_endpoint_auth_signing_alg_values_supported"]
    # The exchange, the refresh and the other key's attempt: assertions, and no secret.
    assert seen["assertions"] == [True, True, True]
    assert [e["authorization"] for e in token_requests(seen["wire"])] == [None, None, None]
    assert seen["token"]["token_type"] == "bearer" and seen["token"]["has_refresh_token"]
    assert seen["refreshed"]["token_type"] == "bearer"
    assert seen["api"]["status"] == 200, seen["api"]
    assert seen["api"]["body"]["data"][0]["email"] == server.world.admin.email
    # RFC 7523 §3: the signature must verify with the client's registered key.
    assert seen["other_key"] == {"refused": True, "error": "invalid_client", "status": 401}


# --- 4. Client credentials -------------------------------------------------------------------


@pytest.mark.parametrize("dpop", [False, True], ids=["bearer", "dpop"])
def test_client_credentials(server: LiveServer, tmp_path: Path, dpop: bool) -> None:
    """RFC 6749 §4.4: an application its admins opted in gets, with its own credentials, a
    token that acts for its company (no person), for 1 hour, without a refresh token
    (§4.4.3); with a proof it is DPoP-bound (RFC 9449 §5) and refused as Bearer (§7.2)."""
    app = create_app(
        server, f"oauth4webapi client credentials {dpop}", "--grant-type", "client_credentials"
    )
    assert "client_credentials" in app["grant_types"]

    seen = run_scenario(
        server,
        "client_credentials.mjs",
        scenario_config(server, app, dpop=dpop, scope="read"),
        {},
        tmp_path,
    )

    assert "client_credentials" in seen["grant_types_supported"]
    assert seen["token"] == {
        "token_type": "dpop" if dpop else "bearer",
        "expires_in": 3600,
        "scope": "read",
        "has_refresh_token": False,
    }
    assert seen["api"]["status"] == 200, seen["api"]
    credential = seen["api"]["body"]["data"][0]
    assert credential["company_id"] == server.world.company_a
    assert credential["employee_id"] is None
    if dpop:
        assert token_requests(seen["wire"])[-1]["body"]["token_type"] == "DPoP"
        assert seen["nonce_retries"]["token"] == 1
        assert_refused_as_bearer(seen["as_bearer"])


# --- 5. JWT access tokens, validated by the library ------------------------------------------


@pytest.mark.parametrize("dpop", [False, True], ids=["bearer", "dpop"])
def test_jwt_access_token_validates_against_jwks_uri(
    server: LiveServer, tmp_path: Path, dpop: bool
) -> None:
    """RFC 9068 §4: a resource server that is not Grantly checks the token with the library's
    validateJwtAccessToken against jwks_uri alone: typ at+jwt (§2.1), the signature, iss, exp,
    aud ({issuer}/api, the audience when no resource was asked), the claims of §2.2 and
    Grantly's own; a DPoP-bound one with the proof the API got (RFC 9449 §6.1, cnf.jkt). One
    expecting another audience refuses it."""
    app = create_app(server, f"oauth4webapi JWT {dpop}", "--access-token-format", "jwt")
    assert app["access_token_format"] == "jwt"

    seen = run_scenario(
        server,
        "jwt_access_token.mjs",
        scenario_config(
            server,
            app,
            dpop=dpop,
            audience=f"{server.url}/api",
            other_audience=f"{server.url}/mcp",
        ),
        {"authorize": person_allows(server)},
        tmp_path,
    )

    assert seen["jwks_uri"] == f"{server.url}/oauth/jwks"
    assert seen["header"]["typ"] == "at+jwt"
    assert seen["header"]["kid"] in seen["published_kids"]
    claims = seen["claims"]
    assert claims["iss"] == server.url
    assert claims["aud"] in (f"{server.url}/api", [f"{server.url}/api"])
    assert claims["client_id"] == app["client_id"]
    assert claims["scope"] == "read write"
    assert claims["exp"] - claims["iat"] == 3600
    assert isinstance(claims["sub"], str) and isinstance(claims["jti"], str)
    assert claims["company_id"] == server.world.company_a
    assert claims["resource_owner_type"] == "user"
    assert seen["token"]["token_type"] == ("dpop" if dpop else "bearer")
    if dpop:
        assert claims["cnf"] == {"jkt": seen["jkt"]}
    else:
        assert "cnf" not in claims
    assert seen["api"]["status"] == 200, seen["api"]
    assert seen["other_audience"]["refused"], seen["other_audience"]
    assert seen["other_audience"]["code"] == "OAUTH_JWT_CLAIM_COMPARISON_FAILED"


# --- 6. Key rotation --------------------------------------------------------------------------


def test_key_rotation_keeps_old_tokens_valid(server: LiveServer, tmp_path: Path) -> None:
    """The issue's rotation: a JWT access token signed by the active key; ``grantly keys
    rotate`` publishes a new key beside it at once (one JWK Set, RFC 7517 §5, the verifier
    picks by ``kid``, RFC 7515 §4.1.4); the old token still validates with validateJwtAccessToken and opens the API; tokens issued
    next are signed by the new key, the old token still valid beside them until it expires,
    and its key cannot be retired meanwhile.

    A running process reads the active key at most every ``key_ring.CACHE_SECONDS`` (30 s):
    rather than wait that long, the server is restarted, as a deploy would, and the new
    process signs with the new key at once."""
    app = create_app(server, "oauth4webapi rotation", "--access-token-format", "jwt")
    config = scenario_config(server, app, audience=f"{server.url}/api")
    person = {"authorize": person_allows(server)}

    issued = run_scenario(
        server, "key_rotation.mjs", {**config, "phase": "issue"}, person, tmp_path
    )
    old_kid = issued["old"]["kid"]
    assert issued["published"] == [old_kid]
    assert issued["old"]["api_status"] == 200

    new_kid = grantly(server, "keys", "rotate", "--activate-after", "0")["kid"]
    assert new_kid != old_kid
    tokens = {"access_token": issued["access_token"], "refresh_token": issued["refresh_token"]}

    rotated = run_scenario(
        server, "key_rotation.mjs", {**config, **tokens, "phase": "rotated"}, {}, tmp_path
    )
    assert set(rotated["published"]) == {old_kid, new_kid}
    assert rotated["old"] == issued["old"]

    restart(server, tmp_path)
    signing = run_scenario(
        server, "key_rotation.mjs", {**config, **tokens, "phase": "signing"}, {}, tmp_path
    )
    assert set(signing["published"]) == {old_kid, new_kid}
    assert signing["new"]["kid"] == new_kid
    assert signing["new"]["api_status"] == 200
    assert signing["old"] == issued["old"]

    statuses = {k["kid"]: k["status"] for k in grantly(server, "keys", "list")["keys"]}
    assert statuses == {old_kid: "verifying", new_kid: "active"}
    refused = subprocess.run(
        [sys.executable, "-m", "grantly.cli", "keys", "retire", "--kid", old_kid, "--json"],
        env=server_env(server.world.settings, server.url),
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0, refused.stdout
