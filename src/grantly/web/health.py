"""Health endpoints for load balancers and orchestrators.

``/healthz``: the process is up (no I/O). ``/readyz``: it can serve, i.e. the database (and
Redis, when configured) answers within a second; 503 with the failing dependency otherwise, so
a load balancer stops sending traffic to a process that would only fail.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..observability import Route
from ..services import services


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    db = services(request).db
    report = {"status": "ok", "database": "ok"}
    try:
        await asyncio.wait_for(db.ping(), timeout=1.0)
    except Exception:  # any failure to reach the database means "not ready"
        report.update(status="unavailable", database="unreachable")
    svc = services(request)
    if svc.settings.redis_url:
        try:
            reachable = await asyncio.wait_for(svc.throttle.ping(), timeout=1.0)
        except Exception:
            reachable = False
        report["redis"] = "ok" if reachable else "unreachable"
        if not reachable:
            report["status"] = "unavailable"
    if report["status"] != "ok":
        return JSONResponse(report, status_code=503, headers={"Retry-After": "5"})
    return JSONResponse(report)


# Plain Starlette routes (no FastAPI dependency machinery: /healthz is the stack's own limit in
# `make bench`); not in the OpenAPI description.
routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
