"""How every resource route runs: dated versions, credentials first, one transaction.

- Factorial versions its API by date in the path (``/api/2026-10-01/resources/...``) and each
  SDK release sends its own date (docs/factorial-api.md §1.3): any date, as ``YYYY-MM-DD``, is
  accepted and served the same way; anything else (2026-99-99 included) is not a path of the
  API (404).
- The credential is judged before the query or the body (RFC 6750 §3.1): a request without a
  valid credential gets 401 whatever else is wrong with it, and a token without the scope
  gets 403 ``insufficient_scope``. GET needs ``read``; every other method ``write``.
- Only principals that act for the company may write (``Principal.may_write``): another
  person's user token gets 403 ``access_denied``, whatever its scopes.
- The authentication and the handler share one transaction, so they see the same data; the
  request body is read before the transaction starts, so that a slow client never holds the
  database's write lock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Path, Security
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..oauth.errors import OAuthError
from ..services import services
from ..store.unit import Store
from .auth import challenge
from .principal import API_KEY_HEADER, Principal, authenticate
from .problems import ApiProblem, forbidden, from_validation_error

# ASCII digits: Python's and Rust's ``\d`` also match other scripts' digits. Months 01-12,
# days 01-31; a day its month does not have (2026-02-30) is refused by ``_is_date``.
VERSION_PATTERN = r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"


def _is_date(version: str) -> bool:
    try:
        dt.date.fromisoformat(version)
    except ValueError:
        return False
    return True


class ApiVersionConvertor(Convertor[str]):
    regex = VERSION_PATTERN

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("api_version", ApiVersionConvertor())

RESOURCES_PREFIX = "/api/{version:api_version}/resources"

Version = Annotated[
    str,
    Path(
        pattern=f"^{VERSION_PATTERN}$",
        description="The API version, a date: every SDK release sends its own "
        "(factorialhr 7: 2026-04-01, factorial-api-client 3: 2026-10-01).",
        examples=["2026-10-01"],
    ),
]


def required_scope(method: str) -> str:
    return "read" if method in ("GET", "HEAD") else "write"


class ResourceRoute(APIRoute):
    """An ``APIRoute`` that authenticates first, in the request's transaction."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def authenticated(request: Request) -> Response:
            if not _is_date(request.path_params.get("version", "2026-01-01")):
                raise HTTPException(404, "this is not a path of the API: the version is a date.")
            scope = required_scope(request.method)
            if scope == "write":
                await request.body()  # before taking the write lock (cached for FastAPI)
            db = services(request).db
            try:
                # A problem raised by the handler leaves the unit of work as an exception:
                # the transaction is rolled back and nothing the request wrote is kept.
                async with db.unit(write=scope == "write") as uow:
                    try:
                        principal = await authenticate(request, uow, scope)
                    except OAuthError as error:
                        return challenge(request, error, scope=scope)
                    if scope == "write" and not principal.may_write:
                        raise forbidden(
                            "only the company's admins, company tokens and API keys may "
                            "change employees; this token acts as an employee who is not an admin."
                        )
                    request.state.principal = principal
                    request.state.uow = uow
                    return await handler(request)
            except RequestValidationError as exc:
                return from_validation_error(exc).response()
            except ApiProblem as problem:
                return problem.response()

        return authenticated


async def _principal(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


async def _store(request: Request) -> Store:
    uow: Store = request.state.uow
    return uow


CurrentPrincipal = Annotated[Principal, Depends(_principal)]
UnitOfWork = Annotated[Store, Depends(_store)]

# Documentation of the two ways to authenticate (the checks are ResourceRoute's).
SECURITY = [
    Security(HTTPBearer(auto_error=False, description="An OAuth access token (RFC 6750).")),
    Security(
        APIKeyHeader(
            name=API_KEY_HEADER,
            auto_error=False,
            description="An API key; it decides when a Bearer token is sent too.",
        )
    ),
]
