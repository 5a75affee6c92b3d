"""Threat: authorization code injection (RFC 9700 §4.5) and PKCE downgrade (§4.8).

An attacker who stole a code (from a log, a Referer, a malicious app on the device) injects it
into a session of their own, or redeems it with a client of their own. Every attack below goes
through the running app and must end in ``invalid_grant`` with no token minted.

Covered elsewhere and not repeated here: a code redeemed with a different registered
redirect URI (``tests/web/test_token_endpoint.py::
test_a_different_redirect_uri_than_authorized_is_invalid_grant``), a redirect URI left out of
the exchange (``…::test_a_missing_redirect_uri_is_invalid_grant_when_the_request_had_one``),
and the PKCE rules unit by unit (``tests/oauth/test_pkce.py``).
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from grantly.oauth.pkce import new_verifier, s256
from tests.conftest import (
    REDIRECT_URI,
    Client,
    World,
    authorize_params,
    callback_params,
    consent,
    count_rows,
    exchange,
    obtain_code,
    sign_in,
)
from tests.security.conftest import NATIVE_CALLBACK, events, oauth_error


def _victims_pkce_code(client: TestClient, world: World, app: Client) -> tuple[str, str]:
    """The victim's app starts a PKCE authorization; returns (code, the victim's verifier)."""
    verifier = new_verifier()
    sign_in(client, world.employee)
    params = {
        "client_id": app.client_id,
        "redirect_uri": NATIVE_CALLBACK,
        "response_type": "code",
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    return callback_params(consent(client, params))["code"], verifier


def _tokens_minted(world: World) -> int:
    return count_rows(world.settings, "access_tokens")


def test_a_stolen_code_injected_into_the_attackers_pkce_session_is_refused(
    client: TestClient, world: World, public_app: Client
) -> None:
    """RFC 9700 §4.5.3 / RFC 7636 §4.6: the client sends the verifier of the attacker's own
    session with the victim's code; the challenge bound to the code does not match."""
    code, _victims_verifier = _victims_pkce_code(client, world, public_app)
    attackers_verifier = new_verifier()
    response = exchange(
        client,
        public_app,
        code,
        redirect_uri=NATIVE_CALLBACK,
        code_verifier=attackers_verifier,
    )
    oauth_error(response, 400, "invalid_grant")
    assert _tokens_minted(world) == 0


def test_the_attacker_gets_a_single_guess_at_the_verifier(
    client: TestClient, world: World, public_app: Client
) -> None:
    """RFC 6749 §4.1.2 (single use) with RFC 7636 §4.6: a failed verifier burns the code, so
    the attacker cannot try again — not even with the right verifier. The later attempt is
    recorded as a replay (RFC 9700 §4.5)."""
    code, victims_verifier = _victims_pkce_code(client, world, public_app)
    wrong = exchange(
        client, public_app, code, redirect_uri=NATIVE_CALLBACK, code_verifier=new_verifier()
    )
    oauth_error(wrong, 400, "invalid_grant")
    right = exchange(
        client, public_app, code, redirect_uri=NATIVE_CALLBACK, code_verifier=victims_verifier
    )
    oauth_error(right, 400, "invalid_grant")
    assert _tokens_minted(world) == 0
    assert "code.replayed" in events(world)


def test_a_pkce_code_redeemed_without_any_verifier_is_refused(
    client: TestClient, world: World, public_app: Client
) -> None:
    """RFC 9700 §4.8.2 (PKCE downgrade): dropping ``code_verifier`` from the token request
    does not turn the PKCE-bound code into a plain one."""
    code, _ = _victims_pkce_code(client, world, public_app)
    response = exchange(client, public_app, code, redirect_uri=NATIVE_CALLBACK)
    body = oauth_error(response, 400, "invalid_grant")
    assert "code_verifier" in body["error_description"]
    assert _tokens_minted(world) == 0


def test_a_verifier_for_a_code_issued_without_pkce_is_refused(
    client: TestClient, world: World
) -> None:
    """RFC 9700 §4.8.2: a code issued without a challenge, presented with a verifier, is a sign
    the attacker stripped ``code_challenge`` from the authorization request; it is refused."""
    code = obtain_code(client, world)
    response = exchange(client, world.app, code, code_verifier=new_verifier())
    oauth_error(response, 400, "invalid_grant")
    assert _tokens_minted(world) == 0


def test_a_plain_challenge_cannot_be_slipped_in(client: TestClient, world: World) -> None:
    """RFC 9700 §2.1.1 / §4.8: ``plain`` is refused by default, so an attacker who sees the
    authorization request cannot redeem its code with the challenge as the verifier. The
    refusal goes back to the client, never a code."""
    sign_in(client, world.admin)
    challenge = new_verifier()
    response = client.get(
        "/oauth/authorize",
        params=authorize_params(
            world.app, code_challenge=challenge, code_challenge_method="plain", state="s"
        ),
    )
    params = callback_params(response)
    assert params["error"] == "invalid_request"
    assert "code" not in params


def test_a_code_redeemed_by_the_attackers_own_client_fails_and_stays_the_victims(
    client: TestClient, world: World
) -> None:
    """RFC 6749 §4.1.3 / RFC 9700 §4.5: the code is bound to the client it was issued to.
    Company B's application, authenticating properly, cannot redeem company A's code — and
    its attempt does not burn the code, so the attacker cannot deny it to its owner."""
    code = obtain_code(client, world)
    stolen = exchange(client, world.other_app, code)
    oauth_error(stolen, 400, "invalid_grant")
    assert _tokens_minted(world) == 0
    assert exchange(client, world.app, code).status_code == 200


def test_a_code_redeemed_with_a_look_alike_redirect_uri_fails(
    client: TestClient, world: World
) -> None:
    """RFC 6749 §4.1.3 / RFC 9700 §4.5: the redirect URI of the token request must equal the
    one the code was issued for, character for character."""
    for look_alike in (
        REDIRECT_URI + "/",
        REDIRECT_URI.upper(),
        REDIRECT_URI + "?x=1",
        REDIRECT_URI.replace("https://", "https://attacker.example@"),
    ):
        code = obtain_code(client, world)
        client.cookies.clear()
        oauth_error(
            exchange(client, world.app, code, redirect_uri=look_alike), 400, "invalid_grant"
        )
    assert _tokens_minted(world) == 0


def test_a_public_clients_code_is_not_redeemable_by_a_confidential_client(
    client: TestClient, world: World, public_app: Client
) -> None:
    """RFC 6749 §4.1.3 / RFC 9700 §4.5: even with the right verifier, a code issued to the
    public application is refused to another (confidential, authenticated) client."""
    code, verifier = _victims_pkce_code(client, world, public_app)
    response = exchange(
        client, world.app, code, redirect_uri=NATIVE_CALLBACK, code_verifier=verifier
    )
    oauth_error(response, 400, "invalid_grant")
    assert _tokens_minted(world) == 0
