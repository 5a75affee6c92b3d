"""``GET /api/v1/me``: who the token acts for, so an integration can try its token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..oauth.bearer import require_scope
from ..oauth.errors import OAuthError
from ..store.database import unit_of_work
from ..store.repositories import Accounts
from ..web.responses import bearer_error
from ..web.services import services
from .auth import access_token

router = APIRouter(prefix="/api/v1")


@router.get("/me", summary="Who the access token acts for (scope: read)")
async def me(request: Request) -> Response:
    svc = services(request)
    async with unit_of_work(svc.engine, write=False) as connection:
        try:
            token = await access_token(request, connection)
            require_scope(token, "read")
        except OAuthError as error:
            return bearer_error(error, scope="read")
        accounts = Accounts(connection)
        company = await accounts.company(token.owner.company_id)
        body: dict[str, Any] = {
            "resource_owner_type": token.owner.type,
            "company": {"id": company.id, "name": company.name} if company else None,
            "scope": " ".join(token.scopes),
            "client_id": token.client_id,
            "expires_at": token.expires_at,
        }
        if token.owner.type == "user" and token.owner.user_id is not None:
            user = await accounts.user(token.owner.user_id)
            body["user"] = (
                {"id": user.id, "email": user.email, "name": user.name, "admin": user.admin}
                if user
                else None
            )
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
