"""``GET /api/{version}/resources/api_public/credentials``: the credential that made the
request, as a one-item list (docs/factorial-api.md §3). Integrations call it to learn which
company, and for a user token which employee, their credential acts for.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from ..http import NO_STORE
from .pagination import CURSOR_PATTERN, decode_cursor, encode_cursor, page_size
from .principal import Principal
from .problems import ERROR_RESPONSES
from .routing import (
    RESOURCES_PREFIX,
    SECURITY,
    CurrentPrincipal,
    ResourceRoute,
    UnitOfWork,
    Version,
)
from .schemas import MAX_ID, Credential, Page, PageMeta

router = APIRouter(
    prefix=RESOURCES_PREFIX + "/api_public/credentials",
    route_class=ResourceRoute,
    dependencies=SECURITY,
    responses=ERROR_RESPONSES,
    tags=["api_public"],
)

# The one credential sits at position 1 of its list; cursors name that position.
_POSITION = 1


async def _credential(principal: Principal, uow: UnitOfWork) -> Credential:
    scope = " ".join(principal.scopes)
    if principal.kind == "user_token" and principal.user_id is not None:
        employee = await uow.people.get(principal.company_id, principal.user_id)
        if employee is not None:
            return Credential(
                id=principal.credential_id,
                company_id=principal.company_id,
                employee_id=employee.id,
                email=employee.email,
                login_email=employee.email,
                full_name=employee.full_name,
                first_name=employee.first_name,
                last_name=employee.last_name,
                role="admin" if employee.admin else "employee",
                scope=scope,
            )
    company = await uow.accounts.company(principal.company_id)
    return Credential(
        id=principal.credential_id,
        company_id=principal.company_id,
        employee_id=None,
        name=company.name if company else None,
        scope=scope,
    )


@router.get(
    "",
    response_model=Page[Credential],
    summary="The credential making the request (scope: read)",
    operation_id="list_credentials",
)
async def list_credentials(
    version: Version,
    response: Response,
    principal: CurrentPrincipal,
    uow: UnitOfWork,
    page: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    after_id: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
    before_id: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
) -> Page[Credential]:
    """User tokens get the person's fields (``employee_id``, names, ``role``); company tokens
    and API keys the company's ``name`` and ``employee_id: null``."""
    response.headers.update(NO_STORE)
    size = page_size(limit)
    if page is not None:
        included = page == 1
    else:
        after = decode_cursor(after_id) if after_id else None
        before = decode_cursor(before_id) if before_id else None
        included = (after is None or after < _POSITION) and (before is None or before > _POSITION)
    data = [await _credential(principal, uow)] if included else []
    cursor = encode_cursor(_POSITION) if data else None
    return Page[Credential](
        data=data,
        meta=PageMeta(
            limit=size,
            total=1,
            has_next_page=False,
            has_previous_page=not included and page is not None and page > 1,
            start_cursor=cursor,
            end_cursor=cursor,
        ),
    )
