"""``/metrics``: Prometheus' text format, for the operator's scraper only.

The counters say how many tokens are issued, which errors clients get and how long requests
take: not secrets, but nothing a stranger should read (RFC 9700 §4.11's advice on what an
attacker learns; OWASP's on monitoring endpoints). With ``GRANTLY_METRICS_TOKEN`` set, the
scraper sends it as a Bearer token (Prometheus' ``authorization`` setting); without it, only a
peer on a loopback address is answered (a scraper on the same host, or ``kubectl
port-forward``). Behind a reverse proxy on the same host, set the token or do not route
``/metrics`` through the proxy: a proxy that sends no ``X-Forwarded-For`` makes every request
look local.
"""

from __future__ import annotations

import hmac
import ipaddress

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from ..http import authorization
from ..oauth.errors import InvalidRequest
from ..observability import Route, metrics_body
from ..services import services


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def metrics(request: Request) -> Response:
    expected = services(request).settings.metrics_token
    if expected:
        try:
            header = authorization(request)
        except InvalidRequest as error:
            return PlainTextResponse(error.description + "\n", status_code=400)
        scheme, _, presented = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), expected.get_secret_value().encode()
        ):
            return PlainTextResponse(
                "send the metrics token as a Bearer token (GRANTLY_METRICS_TOKEN).\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"', "Cache-Control": "no-store"},
            )
    elif not _loopback(request):
        return PlainTextResponse(
            "metrics are served to loopback addresses only; set GRANTLY_METRICS_TOKEN to "
            "scrape them from elsewhere.\n",
            status_code=403,
            headers={"Cache-Control": "no-store"},
        )
    body, content_type = metrics_body()
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})


routes = [Route("/metrics", metrics, methods=["GET"])]
