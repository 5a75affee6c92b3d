"""A separate resource server that trusts Grantly through token introspection (RFC 7662).

It is the shape of any API that Grantly protects without sharing its database: each request's
Bearer token is sent to Grantly's ``/oauth/introspect`` with this service's own client
credentials, and the answer decides (RFC 6750 errors otherwise). Nothing is cached, so a token
revoked at Grantly stops working here on the very next request.

Run it::

    GRANTLY_URL=http://127.0.0.1:8000 RS_CLIENT_ID=... RS_CLIENT_SECRET=... \\
        python examples/resource_server.py --port 9000
    curl -H 'Authorization: Bearer <token>' http://127.0.0.1:9000/reports
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def create_app(grantly_url: str, client_id: str, client_secret: str) -> Starlette:
    introspection_url = grantly_url.rstrip("/") + "/oauth/introspect"
    http = httpx.AsyncClient(timeout=5)

    def challenge(status: int, error: str | None, description: str, scope: str | None = None):
        header = 'Bearer realm="reports"'
        if error:
            header += f', error="{error}", error_description="{description}"'
        if scope:
            header += f', scope="{scope}"'
        body = {"error": error, "error_description": description} if error else {}
        return JSONResponse(body, status_code=status, headers={"WWW-Authenticate": header})

    async def reports(request: Request) -> JSONResponse:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return challenge(401, None, "a Bearer token is required")
        answer = await http.post(
            introspection_url, data={"token": token.strip()}, auth=(client_id, client_secret)
        )
        if answer.status_code != 200:
            return JSONResponse({"error": "temporarily_unavailable"}, status_code=503)
        facts = answer.json()
        if not facts.get("active"):
            return challenge(401, "invalid_token", "the token is not active")
        if "read" not in facts.get("scope", "").split():
            return challenge(403, "insufficient_scope", "this needs the read scope", "read")
        return JSONResponse(
            {
                "report": "headcount",
                "company_id": facts["company_id"],
                "requested_by": facts["sub"],
                "client_id": facts["client_id"],
            }
        )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await http.aclose()

    return Starlette(routes=[Route("/reports", reports)], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    app = create_app(
        os.environ.get("GRANTLY_URL", "http://127.0.0.1:8000"),
        os.environ["RS_CLIENT_ID"],
        os.environ["RS_CLIENT_SECRET"],
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
