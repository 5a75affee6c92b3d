"""One live consent per application and person (or company), however grants race."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import select

from grantly.oauth.models import ResourceOwner
from grantly.store import tables as t
from grantly.store.database import open_database
from grantly.store.migrate import alembic_config
from tests.conftest import World


def _live(world: World, owner_type: str) -> list[tuple[str, ...]]:
    async def main() -> list[tuple[str, ...]]:
        db = open_database(world.settings.database_url)
        try:
            async with db.unit(write=False) as uow:
                c = t.consents
                rows = await uow.tx.rows(
                    select(c.c.scopes).where(
                        c.c.application_id == world.app.id,
                        c.c.owner_type == owner_type,
                        c.c.revoked_at.is_(None),
                    )
                )
                return [tuple(row.scopes.split()) for row in rows]
        finally:
            await db.close()

    return asyncio.run(main())


def test_concurrent_grants_of_one_application_make_one_consent_with_both_scopes(
    world: World,
) -> None:
    user = ResourceOwner("user", world.company_a, world.employee.id)
    company = ResourceOwner("company", world.company_a, world.admin.id)

    async def main() -> None:
        db = open_database(world.settings.database_url)

        async def grant(owner: ResourceOwner, scopes: tuple[str, ...]) -> None:
            async with db.unit() as uow:
                # Each reads before the other writes: the race a select-then-insert loses.
                await uow.consents.covers(
                    world.app.id, world.employee.id, world.company_a, scopes, 1
                )
                await asyncio.sleep(0)
                await uow.consents.record(world.app.id, owner, scopes, 1)

        try:
            for owner in (user, company):
                await asyncio.gather(grant(owner, ("read",)), grant(owner, ("write",)))
        finally:
            await db.close()

    asyncio.run(main())
    for owner_type in ("user", "company"):
        live = _live(world, owner_type)
        assert len(live) == 1, live
        assert set(live[0]) == {"read", "write"}


def test_the_migration_merges_duplicate_live_consents(world: World) -> None:
    """Duplicates made before the unique index existed: one keeps the union of the scopes."""
    url = world.settings.async_database_url
    command.downgrade(alembic_config(url), "0003")

    async def duplicate() -> None:
        db = open_database(world.settings.database_url)
        try:
            async with db.unit() as uow:
                for scopes, updated in (("read", 1), ("write", 2), ("read", 3)):
                    await uow.tx.execute(
                        t.consents.insert().values(
                            application_id=world.app.id,
                            owner_type="user",
                            company_id=world.company_a,
                            user_id=world.employee.id,
                            scopes=scopes,
                            created_at=0,
                            updated_at=updated,
                        )
                    )
        finally:
            await db.close()

    asyncio.run(duplicate())
    command.upgrade(alembic_config(url), "head")
    live = _live(world, "user")
    assert len(live) == 1 and set(live[0]) == {"read", "write"}
