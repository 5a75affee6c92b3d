"""``/api/docs``: Swagger UI for the resource API, served entirely by Grantly.

FastAPI's own page loads Swagger UI from a CDN, so it is blank without the Internet (and a
page of Grantly's would run another origin's script). Its assets come from the
``fastapi-offline`` package instead (Swagger UI 5, which reads the OpenAPI 3.1 FastAPI
writes), mounted at ``ASSETS``. The page's one inline script, Swagger UI's bootstrap, is
allowed by its digest in the page's Content-Security-Policy (CSP Level 3 §2.3.1 hash-source),
so no ``'unsafe-inline'`` and no other origin is needed."""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..observability import Route

PATH = "/api/docs"
OPENAPI_URL = "/api/openapi.json"
ASSETS = "/api/docs/assets"

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def assets() -> StaticFiles:
    """Swagger UI's script, stylesheet and icon, from the package that ships them."""
    return StaticFiles(packages=[("fastapi_offline", "static")])


def _page() -> tuple[bytes, str]:
    page = get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title="Grantly API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon.png",
        # Swagger UI would send the description to validator.swagger.io for its badge.
        swagger_ui_parameters={"validatorUrl": None},
    )
    body = bytes(page.body)
    scripts = _INLINE_SCRIPT.findall(body.decode())
    digests = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in scripts
    )
    policy = (
        f"default-src 'self'; script-src 'self' {digests}; style-src 'self'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    return body, policy


_BODY, CONTENT_SECURITY_POLICY = _page()


async def swagger_ui(_request: Request) -> Response:
    return HTMLResponse(_BODY, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


routes = [Route(PATH, swagger_ui, methods=["GET"])]
