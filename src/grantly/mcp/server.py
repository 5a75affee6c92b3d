"""Grantly's API as an MCP server at ``{issuer}/mcp``: the employees API as tools, over the
official SDK's streamable HTTP transport (MCP specification, "Transports"), behind the MCP
authorization specification's rules for a protected resource.

- The SDK answers every request without a valid token with 401 and ``WWW-Authenticate:
  Bearer resource_metadata=...`` naming ``/.well-known/oauth-protected-resource/mcp`` (RFC 9728
  §5.1), which web/metadata.py serves.
- Tokens are checked in-process (``GrantlyTokens``), by the same rules as ``/api``: active,
  not revoked, the person still active, and issued for this resource: the audience must include
  ``{issuer}/mcp`` (RFC 8707 §2; the MCP specification's "Token Audience Binding"). The SDK
  checks it too (``validate_token_resource``). A token is never passed on to another service
  ("Token Passthrough" is forbidden).
- Each tool call authenticates its token again, in its own unit of work: a token revoked a
  moment ago stops working at once, and what the tool sees is what that person may see through
  ``/api`` (``api.principal``, ``api.employees.view``). Reads need ``read``; changes need
  ``write`` and a principal that acts for the company, as on ``/api``.
- DPoP-bound tokens (RFC 9449 §7.1) come as ``Authorization: DPoP`` with a proof for the
  request; ``Challenges`` hands the SDK, which knows only Bearer, the token alone, and keeps
  the scheme and proof for ``GrantlyTokens`` to check the binding; a bound token sent as
  Bearer is refused (§7.2). The tool call's second check is of the token itself: the binding
  was proven for the very request that carries the call.
- Stateless and answered as JSON: any worker of any host serves any request, as for ``/api``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken as McpAccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import ValidationError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..api.employees import view
from ..api.principal import Principal, of_token
from ..api.schemas import MAX_ID, TEXT_PATTERN, EmployeeUpdate
from ..http import NO_STORE
from ..oauth import bearer, dpop
from ..oauth.errors import OAuthError
from ..oauth.models import MCP
from ..services import Services
from ..store.people import EmployeeFilter, PageRequest
from ..store.unit import Store

INSTRUCTIONS = (
    "Grantly's HR data: the employees of the company the signed-in person belongs to, as that "
    "person may see them. Sensitive fields come back null unless the person may see them."
)
MAX_LIMIT = 100
READ = "read"


@dataclass(slots=True)
class _Request:
    """What the SDK does not pass its token verifier: how the token was presented, the proofs,
    and the request's method and URL; and the verifier's refusal, for the challenge."""

    presented: bearer.Presented | None
    proofs: list[str]
    method: str
    url: str
    refusal: OAuthError | None = field(default=None)


_REQUEST: ContextVar[_Request | None] = ContextVar("grantly_mcp_request", default=None)


class Challenges:
    """RFC 6750 §3 challenges in Grantly's form on the SDK's 401 and 403: the realm, the
    resource metadata (RFC 9728 §5.1), and for ``insufficient_scope`` the scope needed (§3.1),
    which the SDK leaves out (its client then asks for that scope: step-up authorization)."""

    def __init__(self, app: ASGIApp, resource_metadata: str, url: str) -> None:
        self.app = app
        self.resource_metadata = resource_metadata
        self.url = url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        authorizations = [v for n, v in scope.get("headers", []) if n.lower() == b"authorization"]
        presented = bool(authorizations)
        if len(authorizations) > 1:  # as /api (http.authorization): which one counts is unclear
            await JSONResponse(
                {
                    "error": "invalid_request",
                    "error_description": "send one Authorization header, not several.",
                },
                status_code=400,
                headers=NO_STORE,
            )(scope, receive, send)
            return

        request = _Request(None, [], scope.get("method", ""), self.url)
        if presented:
            try:
                request.presented = bearer.presented_from_header(
                    authorizations[0].decode("latin-1")
                )
            except OAuthError:
                request.presented = None
        request.proofs = [v.decode("latin-1") for n, v in scope["headers"] if n.lower() == b"dpop"]
        if request.presented is not None and request.presented.scheme == "dpop":
            # The SDK reads Bearer tokens only: it gets the token, GrantlyTokens the rest.
            scope = dict(scope)
            scope["headers"] = [
                (n, b"Bearer " + request.presented.token.encode("latin-1"))
                if n.lower() == b"authorization"
                else (n, v)
                for n, v in scope["headers"]
            ]
        _REQUEST.set(request)

        async def challenge(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (401, 403):
                header = f'Bearer realm="grantly", resource_metadata="{self.resource_metadata}"'
                refusal = request.refusal
                in_bearer = presented
                dpop_challenge = f'DPoP algs="{" ".join(dpop.ALGORITHMS)}"'
                extra: list[tuple[bytes, bytes]] = []
                if isinstance(refusal, dpop.UseDpopNonce):
                    extra.append((b"dpop-nonce", refusal.nonce.encode()))
                if (
                    message["status"] == 401
                    and refusal is not None
                    and (
                        isinstance(refusal, (dpop.InvalidDpopProof, bearer.BoundTokenAsBearer))
                        or (request.presented is not None and request.presented.scheme == "dpop")
                    )
                ):
                    dpop_challenge += (
                        f', error="{refusal.error}", '
                        f'error_description="{refusal.public_description}"'
                    )
                    in_bearer = False  # the DPoP challenge carries the error
                if message["status"] == 403:
                    header += (
                        ', error="insufficient_scope", error_description="this request needs '
                        f'the \'{READ}\' scope.", scope="{READ}"'
                    )
                elif in_bearer:  # §3.1: a request without credentials gets no error code
                    header += ', error="invalid_token", error_description="the access token is '
                    header += 'invalid, expired or revoked, or not for this resource."'
                message["headers"] = (
                    [
                        (name, value)
                        for name, value in message.get("headers", [])
                        if name.lower() != b"www-authenticate"
                    ]
                    + [(b"www-authenticate", header.encode())]
                    + [(b"www-authenticate", dpop_challenge.encode())]
                    + extra
                )
            await send(message)

        await self.app(scope, receive, challenge)


class GrantlyTokens:
    """The SDK's ``TokenVerifier``: Grantly's own access tokens, checked in-process."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    async def verify_token(self, token: str) -> McpAccessToken | None:
        request = _REQUEST.get()
        if request is None or request.presented is None or request.presented.token != token:
            request = _Request(bearer.Presented("bearer", token), [], "", "")
        svc = self.svc
        async with svc.db.unit(write=False) as uow:
            try:
                found = await bearer.authenticate_request(
                    request.presented,
                    request.proofs,
                    request.method,
                    request.url,
                    uow.tokens,
                    svc.clock,
                    svc.dpop,
                )
                bearer.require_audience(found, MCP)
            except OAuthError as refusal:
                request.refusal = refusal
                return None
        return McpAccessToken(
            token=token,
            client_id=found.client_id,
            scopes=list(found.scopes),
            expires_at=found.expires_at,
            resource=self.svc.settings.issuer + MCP,
            subject=str(found.owner.user_id) if found.owner.user_id is not None else None,
            claims={"company_id": found.owner.company_id, "resource_owner_type": found.owner.type},
        )


async def _authenticate(uow: Store, svc: Services, token: str) -> Any:
    found = await bearer.authenticate(token, uow.tokens, svc.clock)
    bearer.require_audience(found, MCP)
    return found


async def _employee(uow: Store, found: Principal, employee_id: int) -> Any:
    """An employee of the principal's company, as on /api: another company's id, an unknown
    one and one no database could hold are all "no such employee" (tenancy)."""
    employee = (
        await uow.people.get(found.company_id, employee_id) if 1 <= employee_id <= MAX_ID else None
    )
    if employee is None:
        raise ToolError("there is no such employee in your company.")
    return employee


def build(svc: Services) -> tuple[ASGIApp, Any]:
    """The MCP endpoint's ASGI app (to route ``/mcp`` to) and the lifespan it needs."""
    issuer = svc.settings.issuer
    # MCPServer configures the root logger (logging.basicConfig with rich's handler) when it
    # has no handler yet; Grantly's logging is observability.py's, so it is put back as it was.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    server = MCPServer(
        "Grantly",
        instructions=INSTRUCTIONS,
        token_verifier=GrantlyTokens(svc),
        auth=AuthSettings(
            issuer_url=issuer,
            resource_server_url=issuer + MCP,
            # Every tool reads; update_employee also needs ``write`` (checked by the tool).
            required_scopes=[READ],
            validate_token_resource=True,
        ),
    )
    root.handlers[:] = handlers
    root.setLevel(level)

    @asynccontextmanager
    async def principal(scope: str) -> AsyncIterator[tuple[Store, Principal]]:
        """The tool call's principal, its token checked again now, in a unit of work."""
        access = get_access_token()
        if access is None:  # the SDK lets no unauthenticated call through; be sure
            raise ToolError("this tool needs an access token.")
        async with svc.db.unit(write=scope == "write") as uow:
            try:
                token = await _authenticate(uow, svc, access.token)
                bearer.require_scope(token, scope)
                found = of_token(token)
            except OAuthError as error:
                raise ToolError(error.description) from None
            if scope == "write" and not found.may_write:
                raise ToolError(
                    "only an admin's user token or a company token may change employees."
                )
            yield uow, found

    def today() -> dt.date:
        return dt.datetime.fromtimestamp(svc.clock.now(), dt.UTC).date()

    @server.tool(title="Who am I", annotations=None)
    async def whoami() -> dict[str, Any]:
        """The credential in use: whom it acts for, its company, scopes and expiry."""
        async with principal("read") as (uow, found):
            company = await uow.accounts.company(found.company_id)
            user = found.user
            return {
                "resource_owner_type": "user" if found.kind == "user_token" else "company",
                "company": {"id": found.company_id, "name": company.name if company else None},
                "user": {"id": user.id, "email": user.email, "name": user.name, "admin": user.admin}
                if user
                else None,
                "client_id": found.client_id,
                "scope": " ".join(found.scopes),
                "expires_at": found.expires_at,
            }

    @server.tool(title="List employees")
    async def list_employees(
        search: str | None = None,
        only_active: bool = False,
        page: int = 1,
        limit: int = 25,
    ) -> dict[str, Any]:
        """The employees of your company, by id. ``search`` matches any part of a name;
        ``page`` is 1-based, ``limit`` at most 100."""
        if not 1 <= page <= MAX_ID or not 1 <= limit <= MAX_LIMIT:
            raise ToolError(f"page must be 1 or more, limit between 1 and {MAX_LIMIT}.")
        if search is not None and len(search) > 200:
            raise ToolError("search may be at most 200 characters.")
        if search is not None and not re.fullmatch(TEXT_PATTERN, search):
            raise ToolError("search cannot contain control characters.")
        async with principal("read") as (uow, found):
            result = await uow.people.page(
                found.company_id,
                EmployeeFilter(only_active=only_active, full_text_name=search or None),
                PageRequest(limit=limit, page=page),
            )
            day = today()
            return {
                "employees": [
                    view(employee, found, day).model_dump(mode="json")
                    for employee in result.employees
                ],
                "total": result.total,
                "page": page,
                "has_next_page": result.has_next_page,
            }

    @server.tool(title="Get an employee")
    async def get_employee(employee_id: int) -> dict[str, Any]:
        """One employee of your company, by id."""
        async with principal("read") as (uow, found):
            employee = await _employee(uow, found, employee_id)
            return view(employee, found, today()).model_dump(mode="json")

    @server.tool(title="Update an employee")
    async def update_employee(
        employee_id: int,
        first_name: str | None = None,
        last_name: str | None = None,
        preferred_name: str | None = None,
        phone_number: str | None = None,
    ) -> dict[str, Any]:
        """Change an employee's names or phone number (needs the write scope, and an admin's
        user token or a company token). Only the fields given change."""
        given = {
            key: value
            for key, value in {
                "first_name": first_name,
                "last_name": last_name,
                "preferred_name": preferred_name,
                "phone_number": phone_number,
            }.items()
            if value is not None
        }
        try:
            changes = EmployeeUpdate.model_validate(given).model_dump(exclude_unset=True)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ToolError(problems) from None
        async with principal("write") as (uow, found):
            employee = await _employee(uow, found, employee_id)
            updated = await uow.people.update(employee, changes, svc.clock.now())
            return view(updated, found, today()).model_dump(mode="json")

    def transport() -> tuple[ASGIApp, StreamableHTTPSessionManager]:
        app = server.streamable_http_app(
            streamable_http_path=MCP,
            stateless_http=True,
            json_response=True,
            # The endpoint takes Bearer tokens only, never a cookie: a page another origin
            # serves (or a rebound DNS name) gains nothing a token-less request has. Grantly's
            # own Host handling applies; the SDK's Host and Origin lists would refuse browser
            # clients of other origins, which CORS lets in as for /api.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        return app, server.session_manager

    resource_metadata = f"{issuer}/.well-known/oauth-protected-resource{MCP}"
    endpoint = Endpoint(transport)
    return Challenges(endpoint, resource_metadata, issuer + MCP), endpoint.running


class Endpoint:
    """The SDK's transport, made anew for each run of the application (its session manager
    runs once per instance) and kept per event loop: tests run one application in several
    clients at once, each on its own loop, and the manager's tasks belong to the loop that
    started it."""

    def __init__(self, transport: Callable[[], tuple[ASGIApp, StreamableHTTPSessionManager]]):
        self.transport = transport
        self.running_on: dict[int, ASGIApp] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.running_on.get(id(asyncio.get_running_loop()))
        if app is None:  # a request outside the application's lifespan
            response = JSONResponse(
                {"error": "temporarily_unavailable", "error_description": "starting."},
                status_code=503,
                headers=NO_STORE,
            )
            await response(scope, receive, send)
            return
        await app(scope, receive, send)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        app, manager = self.transport()
        loop = id(asyncio.get_running_loop())
        async with manager.run():
            self.running_on[loop] = app
            try:
                yield
            finally:
                del self.running_on[loop]
