"""The official MCP Python SDK's client (``mcp`` 2.3.0, ``OAuthClientProvider``), unchanged,
against a real ``grantly serve``: from nothing to a tool call on ``{issuer}/mcp``, once through
a client metadata document (served over https on loopback, the test CA as SSL_CERT_FILE) and
once through dynamic registration. On the way: RFC 9728 discovery from the 401, RFC 8414
metadata, registration, the person signing in and allowing, the code exchange with
``resource``, ``tools/list``, a tool call returning the person's company's employees, a
refresh, and after the person revokes the grant on the dashboard, a 401.

The person is driven by a plain HTTP client with a cookie jar (sign-in form, consent form), as
a browser would; the SDK is only handed the redirect it would have received."""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from tests.conftest import LiveServer, World, hidden_fields, serve_world, sign_in
from tests.document_server import DocumentServer

CALLBACK = "http://127.0.0.1:33418/callback"
ACCESS_TOKEN_LIFETIME = 3  # seconds: the test waits past it to see a refresh


class MemoryStorage(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


@dataclass
class Wire:
    """What the SDK sent and got, by path: to check the protocol, not to drive it."""

    sent: list[tuple[str, str, bytes]] = field(default_factory=list)
    answered: list[tuple[str, int]] = field(default_factory=list)

    async def on_request(self, request: httpx2.Request) -> None:
        self.sent.append((request.method, request.url.path, request.content))

    async def on_response(self, response: httpx2.Response) -> None:
        self.answered.append((response.request.url.path, response.status_code))

    def token_requests(self) -> list[dict[str, list[str]]]:
        return [
            parse_qs(body.decode())
            for method, path, body in self.sent
            if method == "POST" and path == "/oauth/token"
        ]


@dataclass
class Person:
    """The person at the browser: signed in, allows what the SDK asks for."""

    http: httpx.Client
    pages: list[str] = field(default_factory=list)
    redirect: str | None = None
    refuse: bool = False

    async def allow(self, authorization_url: str) -> None:
        if self.refuse:
            raise RuntimeError("the agent asked to be authorized again")
        page = self.http.get(authorization_url)
        assert page.status_code == 200, page.text
        self.pages.append(page.text)
        decision = self.http.post(
            "/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"}
        )
        assert decision.status_code == 302, decision.text
        self.redirect = decision.headers["location"]

    async def callback(self) -> AuthorizationCodeResult:
        assert self.redirect is not None
        assert self.redirect.startswith(CALLBACK)
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.redirect).query).items()}
        return AuthorizationCodeResult(code=query["code"], state=query["state"], iss=query["iss"])

    def revoke_everything(self) -> None:
        """Revoke each authorization on /oauth/authorized_applications, as the person would."""
        page = self.http.get("/oauth/authorized_applications")
        actions = re.findall(r'action="(/oauth/authorized_applications/\d+/revoke)"', page.text)
        assert actions, page.text
        csrf = html.unescape(re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1])
        for action in set(actions):
            done = self.http.post(action, data={"csrf_token": csrf, "confirmed": "yes"})
            assert done.status_code == 303, done.text


@pytest.fixture
def agent_server(
    tmp_path: Path,
    seeded_template: tuple[Path, World],
    documents: DocumentServer,  # sets SSL_CERT_FILE for the server first
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[LiveServer]:
    monkeypatch.setenv("GRANTLY_CIMD_ALLOW_LOOPBACK", "true")
    monkeypatch.setenv("GRANTLY_ACCESS_TOKEN_LIFETIME", str(ACCESS_TOKEN_LIFETIME))
    yield from serve_world(tmp_path, seeded_template)


async def _agent_session(
    server: LiveServer, person: Person, wire: Wire, metadata_url: str | None
) -> dict[str, Any]:
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=f"{server.url}/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="SDK test agent",
            redirect_uris=[CALLBACK],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=person.allow,
        callback_handler=person.callback,
        client_metadata_url=metadata_url,
    )
    seen: dict[str, Any] = {"storage": storage}
    try:
        async with (
            httpx2.AsyncClient(
                auth=provider,
                timeout=30,
                event_hooks={"request": [wire.on_request], "response": [wire.on_response]},
            ) as http,
            streamable_http_client(f"{server.url}/mcp", http_client=http) as streams,
        ):
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                await session.initialize()
                seen["tools"] = sorted(t.name for t in (await session.list_tools()).tools)
                listed = await session.call_tool("list_employees", {})
                assert not listed.is_error, listed.content
                seen["employees"] = listed.structured_content
                me = await session.call_tool("whoami", {})
                seen["me"] = me.structured_content
                await asyncio.sleep(ACCESS_TOKEN_LIFETIME + 1.5)
                again = await session.call_tool("get_employee", {"employee_id": person_id(seen)})
                assert not again.is_error, again.content
                seen["after_refresh"] = again.structured_content
                person.revoke_everything()
                person.refuse = True
                with anyio.fail_after(20):
                    await session.call_tool("list_employees", {})
                seen["after_revocation"] = "the call succeeded"
    except BaseExceptionGroup as group:
        # The SDK's transport task meets the 401, fails to refresh, and asks for a new
        # authorization, which the person no longer gives.
        matched, _rest = group.split(RuntimeError)
        assert matched is not None, group
        seen["after_revocation"] = "re-authorization asked for"
    return seen


def person_id(seen: dict[str, Any]) -> int:
    return int(seen["me"]["user"]["id"])


def _check_run(server: LiveServer, person: Person, wire: Wire, seen: dict[str, Any]) -> None:
    world = server.world
    mcp = f"{server.url}/mcp"
    # RFC 9728 discovery started from the 401 of /mcp, then RFC 8414 metadata.
    assert wire.answered[0] == ("/mcp", 401)
    paths = [path for _method, path, _body in wire.sent]
    assert "/.well-known/oauth-protected-resource/mcp" in paths
    assert "/.well-known/oauth-authorization-server" in paths
    # The consent page told the person who this is.
    assert "Not registered by your company" in person.pages[0]
    assert "127.0.0.1:33418" in person.pages[0]
    # The code exchange and the refresh named the MCP server as the resource (RFC 8707).
    exchanges = wire.token_requests()
    grants = [request["grant_type"][0] for request in exchanges]
    assert grants[0] == "authorization_code"
    assert "refresh_token" in grants
    assert all(request["resource"] == [mcp] for request in exchanges)
    assert seen["tools"] == ["get_employee", "list_employees", "update_employee", "whoami"]
    employees = seen["employees"]["employees"]
    assert {e["company_id"] for e in employees} == {world.company_a}
    assert world.employee.email in {e["email"] for e in employees}
    assert world.other_admin.email not in {e["email"] for e in employees}
    assert seen["me"]["user"]["email"] == world.employee.email
    assert seen["after_refresh"]["email"] == world.employee.email
    # After the person revoked it on the dashboard, /mcp answered 401, refreshing failed, and
    # the SDK asked the person to authorize again.
    assert seen["after_revocation"] == "re-authorization asked for"
    assert ("/mcp", 401) in wire.answered[-6:]
    # Its refresh token was revoked with the grant.
    storage: MemoryStorage = seen["storage"]
    assert storage.tokens is not None and storage.tokens.refresh_token
    refreshed = httpx.post(
        f"{server.url}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": storage.tokens.refresh_token,
            "client_id": storage.client.client_id if storage.client else "",
        },
    )
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"


def test_the_sdk_reaches_a_tool_through_a_client_metadata_document(
    agent_server: LiveServer,
    documents: DocumentServer,
) -> None:
    metadata_url = documents.url("/agents/sdk-test.json")
    documents.publish(
        "/agents/sdk-test.json",
        {
            "client_id": metadata_url,
            "client_name": "SDK test agent",
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        },
    )
    with httpx.Client(base_url=agent_server.url, follow_redirects=False) as browser:
        sign_in(browser, agent_server.world.employee)
        person, wire = Person(browser), Wire()
        seen = asyncio.run(_agent_session(agent_server, person, wire, metadata_url))
    _check_run(agent_server, person, wire, seen)
    assert documents.requests == ["/agents/sdk-test.json"]
    assert not any(path == "/oauth/register" for _m, path, _b in wire.sent)
    assert wire.token_requests()[0]["client_id"] == [metadata_url]
    assert f"localhost:{documents.port}" in person.pages[0]


def test_the_sdk_reaches_a_tool_through_dynamic_registration(agent_server: LiveServer) -> None:
    with httpx.Client(base_url=agent_server.url, follow_redirects=False) as browser:
        sign_in(browser, agent_server.world.employee)
        person, wire = Person(browser), Wire()
        seen = asyncio.run(_agent_session(agent_server, person, wire, None))
    _check_run(agent_server, person, wire, seen)
    registrations = [body for method, path, body in wire.sent if path == "/oauth/register"]
    assert len(registrations) == 1
    assert ("/oauth/register", 201) in wire.answered


def test_a_token_for_the_api_is_refused_by_the_mcp_endpoint(agent_server: LiveServer) -> None:
    """Audience binding (RFC 8707, the MCP specification's "Token Audience Binding"): a token
    issued without ``resource`` is for ``{issuer}/api`` and opens /api, never /mcp; the SDK's
    own check on the server side (``validate_token_resource``) agrees."""
    world = agent_server.world
    with httpx.Client(base_url=agent_server.url, follow_redirects=False) as browser:
        sign_in(browser, world.employee)
        page = browser.get(
            "/oauth/authorize",
            params={
                "client_id": world.app.client_id,
                "redirect_uri": "https://client.example/callback",
                "response_type": "code",
                "scope": "read",
            },
        )
        decision = browser.post(
            "/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"}
        )
        code = parse_qs(urlsplit(decision.headers["location"]).query)["code"][0]
        token = browser.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": "https://client.example/callback",
                "client_id": world.app.client_id,
                "client_secret": world.app.client_secret,
            },
        ).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert browser.get("/api/v1/me", headers=bearer).status_code == 200
        refused = browser.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={**bearer, "Accept": "application/json, text/event-stream"},
        )
    assert refused.status_code == 401
    assert 'resource_metadata="' in refused.headers["www-authenticate"]
    assert time.time() > 0
