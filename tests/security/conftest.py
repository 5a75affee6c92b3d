"""Shared by the adversarial modules: reading the audit trail, a public (PKCE) application,
and small request helpers. The attacks themselves go through the ASGI app (``client``) or a
real ``grantly serve`` (``live_server``) with the fixtures of ``tests/conftest.py``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from grantly.oauth.pkce import new_verifier, s256
from grantly.store import tables as t
from tests.conftest import Client, World, callback_params, consent, exchange, sign_in
from tests.security_tools import public_client

NATIVE_CALLBACK = "com.example.app:/oauth/callback"


@dataclass(frozen=True)
class Trace:
    """One row of ``audit_events``."""

    event: str
    company_id: int | None
    application_id: int | None
    actor_user_id: int | None
    detail: dict[str, Any]


def audit_trail(world: World) -> list[Trace]:
    """Every audit event, oldest first: what the admins' /audit page is built from."""

    async def work(connection: Any) -> list[Trace]:
        e = t.audit_events
        rows = await connection.tx.rows(select(e).order_by(e.c.id))
        return [
            Trace(r.event, r.company_id, r.application_id, r.actor_user_id, json.loads(r.detail))
            for r in rows
        ]

    return list(world.run(work))


def events(world: World) -> list[str]:
    return [trace.event for trace in audit_trail(world)]


def basic(app: Client, secret: str | None = None) -> tuple[str, str]:
    return (app.client_id, secret if secret is not None else app.client_secret or "")


def refresh(http: TestClient | httpx.Client, app: Client, refresh_token: str) -> httpx.Response:
    return http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=basic(app),
    )


def me(http: TestClient | httpx.Client, access_token: str) -> int:
    """The status /api/v1/me answers to the token: 200 while it works, 401 once it is dead."""
    return http.get("/api/v1/me", headers={"Authorization": f"Bearer {access_token}"}).status_code


def oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    """An RFC 6749 §5.2 error, never cached."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error, body
    assert response.headers["cache-control"] == "no-store"
    return dict(body)


@pytest.fixture
def public_app(world: World) -> Client:
    """A native application of company A: no secret, PKCE required, a private-use scheme and
    a loopback redirect URI."""
    return public_client(world, NATIVE_CALLBACK, "http://127.0.0.1/cb")


def public_tokens(
    http: TestClient, world: World, public_app: Client
) -> tuple[dict[str, Any], str, str]:
    """The employee authorizes the public application with PKCE (S256): the token response,
    the code and the verifier."""
    verifier = new_verifier()
    sign_in(http, world.employee)
    code = callback_params(
        consent(
            http,
            {
                "client_id": public_app.client_id,
                "redirect_uri": NATIVE_CALLBACK,
                "response_type": "code",
                "code_challenge": s256(verifier),
                "code_challenge_method": "S256",
            },
        )
    )["code"]
    tokens = exchange(
        http, public_app, code, redirect_uri=NATIVE_CALLBACK, code_verifier=verifier
    ).json()
    return tokens, code, verifier
