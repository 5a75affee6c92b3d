"""The out-of-band code page (``urn:ietf:wg:oauth:2.0:oob``) against a real `grantly serve`:
the curl command it shows, with only the placeholders it names filled in, gets tokens; with
PKCE it carries the ``code_verifier`` line (RFC 7636 §4.5), and the page shows the ``state``
the application sent (RFC 6749 §4.1.2)."""

from __future__ import annotations

import html
import json
import re
import subprocess
from urllib.parse import urlencode

import httpx
import pytest

from grantly.oauth import pkce
from grantly.oauth.redirect_uris import OUT_OF_BAND
from tests.conftest import LiveServer, hidden_fields, sign_in

pytestmark = pytest.mark.live

_PRE = re.compile(r'<pre id="token-curl">(.*?)</pre>', re.S)
_STATE = re.compile(r'<code id="authorization-state">(.*?)</code>', re.S)
_CODE = re.compile(r'<code id="authorization-code">(.*?)</code>', re.S)


def _register(live_server: LiveServer, *, public: bool) -> dict[str, str]:
    args = ["apps", "create", "--company", str(live_server.world.company_a)]
    args += ["--name", "CLI tool", "--redirect-uri", OUT_OF_BAND]
    return live_server.grantly(*args, *(["--public"] if public else []))


def _code_page(live_server: LiveServer, client_id: str, **extra: str) -> str:
    """Sign in, open the authorization request, press Allow: the page that shows the code."""
    query = {
        "client_id": client_id,
        "redirect_uri": OUT_OF_BAND,
        "response_type": "code",
        "scope": "read",
        **extra,
    }
    with httpx.Client(base_url=live_server.url, timeout=10, follow_redirects=False) as http:
        sign_in(http, live_server.world.admin)
        consent = http.get(f"/oauth/authorize?{urlencode(query)}")
        assert consent.status_code == 200, consent.text
        page = http.post(
            "/oauth/authorize", data={**hidden_fields(consent.text), "decision": "allow"}
        )
    assert page.status_code == 200, page.text
    return page.text


def _shown(pattern: re.Pattern[str], page: str) -> str:
    match = pattern.search(page)
    assert match, page
    return html.unescape(match.group(1))


def _run(command: str, **placeholders: str) -> tuple[int, dict[str, object]]:
    """The command as a person pastes it into a shell, with the placeholders replaced."""
    for placeholder, value in placeholders.items():
        assert placeholder in command, command
        command = command.replace(placeholder, value)
    assert "<YOUR_" not in command, command
    assert command.startswith("curl ")
    # A shell, as where it is pasted: it joins the lines ending in a backslash and unquotes.
    out = subprocess.run(
        ["/bin/sh", "-c", command + " --silent --show-error --write-out '\\n%{http_code}'"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    body, _, status = out.stdout.rpartition("\n")
    return int(status), json.loads(body)


@pytest.mark.parametrize("public", [False, True], ids=["confidential", "public"])
def test_the_shown_curl_with_pkce_gets_tokens(live_server: LiveServer, public: bool) -> None:
    app = _register(live_server, public=public)
    verifier = pkce.new_verifier()
    page = _code_page(
        live_server,
        app["client_id"],
        code_challenge=pkce.s256(verifier),
        code_challenge_method="S256",
        state="xyz 42&<tag>",
    )
    assert _shown(_STATE, page) == "xyz 42&<tag>"
    command = _shown(_PRE, page)
    assert "--data-urlencode 'code_verifier=<YOUR_CODE_VERIFIER>'" in command, command
    assert "&lt;YOUR_CODE_VERIFIER&gt;</code>" in page  # the text says what to put there

    placeholders = {"<YOUR_CODE_VERIFIER>": verifier}
    if not public:
        placeholders["<YOUR_CLIENT_SECRET>"] = app["client_secret"]
    status, body = _run(command, **placeholders)
    assert status == 200, body
    assert body["token_type"] == "Bearer" and body["access_token"] and body["scope"] == "read"

    me = httpx.get(
        f"{live_server.url}/api/v1/me",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=10,
    )
    assert me.status_code == 200, me.text


def test_without_pkce_the_curl_has_no_verifier_and_no_state_is_invented(
    live_server: LiveServer,
) -> None:
    app = _register(live_server, public=False)
    page = _code_page(live_server, app["client_id"])
    assert _STATE.search(page) is None
    command = _shown(_PRE, page)
    assert "code_verifier" not in command
    assert "YOUR_CODE_VERIFIER" not in page
    assert _shown(_CODE, page) in command
    status, body = _run(command, **{"<YOUR_CLIENT_SECRET>": app["client_secret"]})
    assert status == 200, body
