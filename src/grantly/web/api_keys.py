"""The company's API keys (``/api_keys``), for its admins: list, create (the key is shown
once), revoke. Forms carry the CSRF token; creating is not repeated by a reload."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..api.keys import InvalidApiKeyName, create_api_key
from ..http import NO_STORE
from ..oauth.models import User
from ..services import services
from ..store.api_keys import ApiKey
from ..store.unit import Store
from . import pages, sessions
from .guards import admin_or_refusal, checked_form, form_id
from .pages import audit, render
from .responses import error_page

router = APIRouter(prefix="/api_keys")

MAX_ID = 2**31 - 1  # ids beyond what the database can hold exist nowhere


async def _admin(request: Request, uow: Store) -> User | Response:
    return await admin_or_refusal(
        request,
        uow,
        title="Only admins manage API keys",
        why="An API key opens all of your company's data, so only your company's admins can "
        "create or revoke one. To build an integration that acts as you, authorize an OAuth "
        "application instead.",
    )


async def _index(
    request: Request,
    uow: Store,
    user: User,
    *,
    name: str = "",
    problem: str | None = None,
    status: int = 200,
) -> Response:
    keys = await uow.api_keys.for_company(user.company_id)
    return render(
        request,
        "api_keys/index.html",
        status,
        api_keys=keys,
        name=name,
        problem=problem,
        warnings={key.id: " ".join(revoking(key)) for key in keys if key.active},
    )


@router.get("", include_in_schema=False)
async def index(request: Request) -> Response:
    async with services(request).db.unit(write=False) as uow:
        user = await _admin(request, uow)
        if isinstance(user, Response):
            return user
        return await _index(request, uow, user)


@router.post("", include_in_schema=False)
async def create(request: Request) -> Response:
    svc = services(request)
    form, rejected = await checked_form(request)
    if rejected:
        return rejected
    name = str(form.get("name") or "")
    async with svc.db.unit() as uow:
        user = await _admin(request, uow)
        if isinstance(user, Response):
            return user
        try:
            created = await create_api_key(uow, user.company_id, name, user.id, svc.clock.now())
        except InvalidApiKeyName as exc:
            return await _index(request, uow, user, name=name[:200], problem=str(exc), status=422)
        await audit(
            request,
            uow,
            "api_key.created",
            company_id=user.company_id,
            actor_user_id=user.id,
            name=created.api_key.name,
            hint=created.api_key.hint,
        )
    sessions.mark_done(request, form_id(form), "/api_keys")
    sessions.notify(
        request,
        f"API key “{created.api_key.name}” created. Copy it now: this is the only time it is "
        "shown.",
    )
    response = render(
        request, "api_keys/created.html", 201, api_key=created.api_key, key=created.key
    )
    response.headers.update(NO_STORE)
    return response


def revoking(key: ApiKey) -> list[str]:
    """What revoking an API key stops: the confirm step's sentences."""
    return [
        f"Requests with the API key “{key.name}” (it starts with {key.hint}) get 401 at once: "
        "every integration that sends it stops working until it is given a new key.",
        "A revoked key cannot be turned back on.",
    ]


@router.post("/{key_id:int}/revoke", include_in_schema=False)
async def revoke(request: Request, key_id: int) -> Response:
    svc = services(request)
    form, rejected = await checked_form(request)
    if rejected:
        return rejected
    async with svc.db.unit() as uow:
        user = await _admin(request, uow)
        if isinstance(user, Response):
            return user
        keys = uow.api_keys
        key = await keys.get(key_id, user.company_id) if 0 < key_id <= MAX_ID else None
        if key is None:
            # Another company's key is "not found" too: nothing tells it exists.
            return error_page(
                request, "API key not found", "There is no such API key in your company.", 404
            )
        if not key.active:
            sessions.notify(request, f"API key “{key.name}” was already revoked.", "warn")
            return RedirectResponse("/api_keys", status_code=303)
        if not pages.confirmed(form):
            return pages.confirm(
                request,
                title=f"Revoke the API key “{key.name}”?",
                consequences=revoking(key),
                action=f"/api_keys/{key.id}/revoke",
                button="Revoke API key",
                cancel="/api_keys",
            )
        await keys.revoke(key, svc.clock.now())
        await audit(
            request,
            uow,
            "api_key.revoked",
            company_id=user.company_id,
            actor_user_id=user.id,
            name=key.name,
            hint=key.hint,
        )
    sessions.notify(request, f"API key “{key.name}” revoked: requests with it get 401 from now on.")
    return RedirectResponse("/api_keys", status_code=303)
