"""The floor probe of `make bench`: what the hot operations cost with no OAuth logic at all.

The same HTTP stack as `grantly serve` (uvicorn with 2 workers, Starlette routes, the body parsed
with parse_qsl, JSON answers), the same tables and indexes (it runs on the database of the
Grantly target it is measured beside), the same writes (the client looked up, the code or
refresh token used with a conditional UPDATE ... RETURNING, a new access token, a new refresh
token, an audit row, digests of fresh random values), and nothing else: no parameter rules, no
PKCE, no scopes, no error handling beyond "not found".

- SQLite: Grantly's own store (``grantly.store``: sqlite3 in the event loop, group commit)
  through its repositories' statements, one unit of work per request.
- PostgreSQL: asyncpg's pool, and each operation as one statement (data-modifying ``WITH``s):
  one round trip per request, the least a database can be asked.

Run by bench/run.py: ``uvicorn --app-dir bench --factory floor:create_app``, with
``FLOOR_DATABASE_URL`` set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from grantly.oauth.models import NewTokens
from grantly.store.database import open_database

ACCESS_LIFETIME = 3600
REFRESH_LIFETIME = 7 * 24 * 3600

_CODE_EXCHANGE = """
WITH app AS (SELECT id, secret_digest FROM applications WHERE client_id = $1),
c AS (
    UPDATE authorization_codes SET consumed_at = $3
    WHERE digest = $2 AND application_id = (SELECT id FROM app) AND consumed_at IS NULL
    RETURNING id, application_id, owner_type, company_id, user_id, scopes
),
a AS (
    INSERT INTO access_tokens (digest, application_id, owner_type, company_id, user_id, scopes,
                               family_id, created_at, expires_at)
    SELECT $4, application_id, owner_type, company_id, user_id, scopes, id, $3, $3 + 3600 FROM c
),
r AS (
    INSERT INTO refresh_tokens (digest, application_id, owner_type, company_id, user_id, scopes,
                                family_id, created_at, expires_at)
    SELECT $5, application_id, owner_type, company_id, user_id, scopes, id, $3, $3 + 604800
    FROM c
),
e AS (
    INSERT INTO audit_events (event, company_id, actor_user_id, application_id, detail, ip,
                              created_at)
    SELECT 'token.issued', company_id, user_id, application_id, $6, $7, $3 FROM c
)
SELECT (SELECT secret_digest FROM app) AS secret_digest, c.scopes FROM c
"""

_REFRESH = """
WITH app AS (SELECT id, secret_digest FROM applications WHERE client_id = $1),
c AS (
    UPDATE refresh_tokens SET rotated_at = $3
    WHERE digest = $2 AND application_id = (SELECT id FROM app)
      AND rotated_at IS NULL AND revoked_at IS NULL
    RETURNING application_id, owner_type, company_id, user_id, scopes, family_id
),
a AS (
    INSERT INTO access_tokens (digest, application_id, owner_type, company_id, user_id, scopes,
                               family_id, created_at, expires_at)
    SELECT $4, application_id, owner_type, company_id, user_id, scopes, family_id, $3, $3 + 3600
    FROM c
),
r AS (
    INSERT INTO refresh_tokens (digest, application_id, owner_type, company_id, user_id, scopes,
                                family_id, created_at, expires_at)
    SELECT $5, application_id, owner_type, company_id, user_id, scopes, family_id, $3,
           $3 + 604800
    FROM c
),
e AS (
    INSERT INTO audit_events (event, company_id, actor_user_id, application_id, detail, ip,
                              created_at)
    SELECT 'token.refreshed', company_id, user_id, application_id, $6, $7, $3 FROM c
)
SELECT (SELECT secret_digest FROM app) AS secret_digest, c.scopes FROM c
"""

_INTROSPECT = """
SELECT (SELECT secret_digest FROM applications WHERE client_id = $1) AS secret_digest,
       t.scopes, t.expires_at, t.created_at, t.owner_type, t.company_id, t.user_id, a.client_id
FROM access_tokens t JOIN applications a ON a.id = t.application_id
WHERE t.digest = $2 AND t.revoked_at IS NULL
"""

_BEARER = """
SELECT t.scopes, t.expires_at, t.owner_type, t.company_id, t.user_id, a.client_id,
       coalesce(u.active, true) AS user_active, u.email, u.name, u.admin, co.name AS company
FROM access_tokens t
JOIN applications a ON a.id = t.application_id
JOIN companies co ON co.id = t.company_id
LEFT JOIN users u ON u.id = t.user_id AND t.owner_type = 'user'
WHERE t.digest = $1 AND t.revoked_at IS NULL
"""


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _client(request: Request, form: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    if header.startswith("Basic "):
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        return client_id, secret
    return form.get("client_id", ""), form.get("client_secret", "")


async def _form(request: Request) -> dict[str, str]:
    return dict(parse_qsl((await request.body()).decode()))


def _tokens(scopes: str, now: int, refresh: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": "gat_" + secrets.token_urlsafe(32),
        "token_type": "Bearer",
        "expires_in": ACCESS_LIFETIME,
        "scope": scopes,
        "created_at": now,
    }
    if refresh:
        body["refresh_token"] = "grt_" + secrets.token_urlsafe(32)
    return body


NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
NOT_FOUND = JSONResponse({"error": "invalid_grant"}, status_code=400)


def create_app() -> Starlette:
    url = os.environ["FLOOR_DATABASE_URL"]
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_app(url)
    return _postgresql_app(url)


def _routes(token: Any, introspect: Any, me: Any) -> list[Route]:
    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return [
        Route("/oauth/token", token, methods=["POST"]),
        Route("/oauth/introspect", introspect, methods=["POST"]),
        Route("/api/v1/me", me, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]


def _postgresql_app(url: str) -> Starlette:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    state: dict[str, asyncpg.Pool] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        state["pool"] = await asyncpg.create_pool(dsn, min_size=4, max_size=16)
        yield
        await state["pool"].close()

    async def token(request: Request) -> Response:
        form = await _form(request)
        client_id, secret = _client(request, form)
        now = int(time.time())
        refresh = form.get("grant_type") == "refresh_token"
        body = _tokens("", now)
        presented = form.get("refresh_token" if refresh else "code", "")
        async with state["pool"].acquire() as connection:
            row = await connection.fetchrow(
                _REFRESH if refresh else _CODE_EXCHANGE,
                client_id,
                _digest(presented),
                now,
                _digest(body["access_token"]),
                _digest(body["refresh_token"]),
                json.dumps({"scope": "read write"}),
                request.client.host if request.client else None,
            )
        if row is None or not hmac.compare_digest(row["secret_digest"] or "", _digest(secret)):
            return NOT_FOUND
        body["scope"] = row["scopes"]
        return JSONResponse(body, headers=NO_STORE)

    async def introspect(request: Request) -> Response:
        form = await _form(request)
        client_id, secret = _client(request, form)
        async with state["pool"].acquire() as connection:
            row = await connection.fetchrow(_INTROSPECT, client_id, _digest(form.get("token", "")))
        if row is None or not hmac.compare_digest(row["secret_digest"] or "", _digest(secret)):
            return JSONResponse({"active": False}, headers=NO_STORE)
        return JSONResponse(
            {
                "active": True,
                "scope": row["scopes"],
                "client_id": row["client_id"],
                "exp": row["expires_at"],
                "iat": row["created_at"],
                "company_id": row["company_id"],
            },
            headers=NO_STORE,
        )

    async def me(request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        async with state["pool"].acquire() as connection:
            row = await connection.fetchrow(_BEARER, _digest(token))
        if row is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(
            {"company": {"id": row["company_id"], "name": row["company"]}, "scope": row["scopes"]}
        )

    return Starlette(routes=_routes(token, introspect, me), lifespan=lifespan)


def _sqlite_app(url: str) -> Starlette:
    db = open_database(url)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await db.close()

    async def token(request: Request) -> Response:
        form = await _form(request)
        client_id, secret = _client(request, form)
        now = int(time.time())
        refresh = form.get("grant_type") == "refresh_token"
        body = _tokens("", now)
        presented = _digest(form.get("refresh_token" if refresh else "code", ""))
        async with db.unit() as uow:
            # Grantly's reads and writes: the client with the credential, then one guarded
            # step that uses the credential and writes the tokens and the audit row.
            if refresh:
                application, record = await uow.tokens.client_with_refresh_token(
                    client_id, presented
                )
            else:
                application, record = await uow.codes.client_with_code(client_id, presented)
            if (
                application is None
                or record is None
                or not hmac.compare_digest(application.secret_digest or "", _digest(secret))
            ):
                return NOT_FOUND
            owner, scopes = record.owner, record.scopes
            family = record.family_id if refresh else record.id
            tokens = NewTokens(
                application_id=application.id,
                owner=owner,
                scopes=scopes,
                created_at=now,
                access_digest=_digest(body["access_token"]),
                access_expires_at=now + ACCESS_LIFETIME,
                refresh_digest=_digest(body["refresh_token"]),
                refresh_expires_at=now + REFRESH_LIFETIME,
                family_id=family,
                refresh_scopes=scopes,
            )
            await uow.audit.record(
                "token.refreshed" if refresh else "token.issued",
                company_id=owner.company_id,
                now=now,
                actor_user_id=owner.user_id,
                application_id=application.id,
                ip=request.client.host if request.client else None,
                scope=" ".join(scopes),
            )
            if refresh:
                used = await uow.tokens.rotate(record.id, family, now, tokens)
            else:
                used = await uow.codes.redeem(record.id, now, tokens)
            if not used:
                return NOT_FOUND
        body["scope"] = " ".join(scopes)
        return JSONResponse(body, headers=NO_STORE)

    async def introspect(request: Request) -> Response:
        form = await _form(request)
        client_id, secret = _client(request, form)
        async with db.unit(write=False) as uow:
            application = await uow.applications.by_client_id(client_id)
            if application is None or not hmac.compare_digest(
                application.secret_digest or "", _digest(secret)
            ):
                return JSONResponse({"active": False}, headers=NO_STORE)
            access = await uow.tokens.access_token(_digest(form.get("token", "")))
        if access is None:
            return JSONResponse({"active": False}, headers=NO_STORE)
        return JSONResponse(
            {
                "active": True,
                "scope": " ".join(access.scopes),
                "client_id": access.client_id,
                "exp": access.expires_at,
                "iat": access.created_at,
                "company_id": access.owner.company_id,
            },
            headers=NO_STORE,
        )

    async def me(request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        async with db.unit(write=False) as uow:
            access = await uow.tokens.access_token(_digest(token))
        if access is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(
            {
                "company": {"id": access.owner.company_id, "name": access.company_name},
                "scope": " ".join(access.scopes),
            }
        )

    return Starlette(routes=_routes(token, introspect, me), lifespan=lifespan)
