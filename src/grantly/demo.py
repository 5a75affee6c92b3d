"""The demo's seed (``grantly demo``, ``make demo``): a company, an admin, an employee and a
confidential application with well-known credentials, for trying Grantly on one machine."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from . import admin
from .oauth.redirect_uris import OUT_OF_BAND
from .oauth.registration import validate
from .passwords import hash_password
from .settings import Settings
from .store.unit import Store

DEMO_COMPANY = "Acme Demo"
DEMO_ADMIN = ("admin@acme.example", "demo-admin-password", "Ada Admin")
DEMO_EMPLOYEE = ("employee@acme.example", "demo-employee-password", "Eve Employee")
DEMO_APP = "Demo integration"
DEMO_REDIRECT_URIS = (OUT_OF_BAND, "http://127.0.0.1:8765/callback")


async def seed(uow: Store, settings: Settings, now: int) -> dict[str, Any]:
    """Create the demo company, admin, employee and application, or reuse them; a confidential
    application's secret is kept only as a digest, so a rerun issues a fresh one to print.
    Returns what `grantly demo` prints."""
    accounts = uow.accounts
    company = await accounts.company_by_name(DEMO_COMPANY)
    if company is None:
        company = await accounts.create_company(DEMO_COMPANY, now)
    people = {}
    for key, (email, password, display, is_admin) in {
        "admin": (*DEMO_ADMIN, True),
        "employee": (*DEMO_EMPLOYEE, False),
    }.items():
        found = await accounts.user_with_password_hash(email)
        if found is None:
            await accounts.create_user(
                company_id=company.id,
                email=email,
                name=display,
                password_hash=hash_password(password),
                admin=is_admin,
                now=now,
            )
        people[key] = {"email": email, "password": password}
    existing = [a for a in await uow.applications.for_company(company.id) if a.name == DEMO_APP]
    if existing:
        application = existing[0]
        # Only a digest of the secret is kept, so a rerun issues a fresh one to print.
        secret = await admin.regenerate_secret(uow, application, now)
    else:
        draft = validate(
            name=DEMO_APP,
            redirect_uris=DEMO_REDIRECT_URIS,
            confidential=True,
            scopes=settings.scope_names,
            server_scopes=settings.scope_names,
        )
        created = await admin.create_application(uow, company.id, draft, now)
        application, secret = created.application, created.client_secret
    query = {
        "client_id": application.client_id,
        "redirect_uri": OUT_OF_BAND,
        "response_type": "code",
        "scope": " ".join(application.scopes),
        "state": "demo",
    }
    return {
        "company": {"id": company.id, "name": company.name},
        **people,
        "application": {
            "client_id": application.client_id,
            "client_secret": secret,
            "redirect_uris": list(application.redirect_uris),
        },
        "authorize_url": f"{settings.issuer}/oauth/authorize?{urlencode(query)}",
        "company_authorize_url": f"{settings.issuer}/oauth/authorize?"
        + urlencode(query | {"resource_owner_type": "company"}),
    }
