"""Changing an application's security settings in tests, as its admins would (the same
validation and the same update as the dashboard and ``grantly apps update``)."""

from __future__ import annotations

from typing import Any

from grantly import admin
from grantly.oauth.registration import security_of, validate
from tests.conftest import Client, World


def configure(world: World, app: Client, **security: Any) -> None:
    async def work(uow: Any) -> None:
        application = await uow.applications.by_client_id(app.client_id)
        current = security_of(application)
        current.update(security)
        draft = validate(
            name=application.name,
            redirect_uris=list(application.redirect_uris),
            confidential=application.confidential,
            scopes=list(application.scopes),
            server_scopes=("read", "write"),
            consent=application.consent,
            security=current,
        )
        await admin.update_application(uow, application, draft, 0)

    world.run(work)


def public_client(
    world: World,
    *redirect_uris: str,
    scopes: tuple[str, ...] = ("read", "write"),
) -> Client:
    """A public application (no secret, PKCE) of company A; by default its one redirect URI
    is a loopback one."""

    async def work(uow: Any) -> Any:
        draft = validate(
            name="Mobile",
            redirect_uris=list(redirect_uris or ("http://127.0.0.1/cb",)),
            confidential=False,
            scopes=list(scopes),
            server_scopes=("read", "write"),
        )
        return await admin.create_application(uow, world.company_a, draft, 0)

    created = world.run(work)
    return Client(
        created.application.id,
        created.application.client_id,
        None,
        list(created.application.redirect_uris),
        world.company_a,
    )
