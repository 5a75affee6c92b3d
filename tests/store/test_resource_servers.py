"""Migration 0010 and the ``resource_servers`` table (RFC 8707 resource indicators).

Rows of codes and tokens from before it are Grantly's own API's (their audience is NULL, the
default); a resource server's id is never given twice (AUTOINCREMENT on SQLite, as 0007 made
the other tables named by id); a URI is registered once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic import command

from grantly.oauth.models import DEFAULT_AUDIENCE
from grantly.store.database import open_database
from grantly.store.errors import Conflict
from grantly.store.migrate import alembic_config
from grantly.store.unit import Store
from tests.conftest import run_sql

BEFORE = [
    "INSERT INTO companies (id, name, created_at) VALUES (1, 'Acme', 0)",
    "INSERT INTO users (id, company_id, email, name, password_hash, admin, active, created_at) "
    "VALUES (1, 1, 'ana@acme.example', 'Ana', 'hash', true, true, 0)",
    "INSERT INTO applications (id, company_id, name, client_id, confidential, redirect_uris, "
    "scopes, created_at, updated_at) VALUES (1, 1, 'App', 'cid', true, 'https://a.example', "
    "'read', 0, 0)",
    "INSERT INTO authorization_codes (digest, application_id, owner_type, company_id, user_id, "
    "redirect_uri, redirect_uri_in_request, scopes, created_at, expires_at) "
    "VALUES ('code-digest', 1, 'user', 1, 1, 'https://a.example', true, 'read', 0, 9999999999)",
    "INSERT INTO access_tokens (digest, application_id, owner_type, company_id, user_id, scopes, "
    "family_id, created_at) VALUES ('token-digest', 1, 'user', 1, 1, 'read', 1, 0)",
    "INSERT INTO refresh_tokens (digest, application_id, owner_type, company_id, user_id, "
    "scopes, family_id, created_at, expires_at) "
    "VALUES ('refresh-digest', 1, 'user', 1, 1, 'read', 1, 0, 9999999999)",
]


def _in_unit(url: str, work: Any) -> Any:
    async def main() -> Any:
        db = open_database(url)
        try:
            async with db.unit() as uow:
                return await work(uow)
        finally:
            await db.close()

    return asyncio.run(main())


async def _create(uow: Store, uri: str, n: int) -> int:
    server = await uow.resources.create(
        uri=uri,
        name="Reports",
        scopes=("read",),
        client_id=f"rs.{n}",
        secret_digest="d" * 64,
        now=0,
    )
    return server.id


def test_codes_and_tokens_from_before_are_for_grantly_s_api(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "0007")
    run_sql(empty_database, BEFORE)
    command.upgrade(config, "head")

    async def work(uow: Store) -> tuple[Any, ...]:
        _, code = await uow.codes.client_with_code("cid", "code-digest")
        return (
            code,
            await uow.tokens.access_token("token-digest"),
            await uow.tokens.refresh_token("refresh-digest"),
        )

    code, access, refresh = _in_unit(empty_database, work)
    assert code.audience == access.audience == refresh.audience == DEFAULT_AUDIENCE
    assert run_sql(empty_database, ["SELECT audience FROM access_tokens"]) == [[(None,)]]


def test_downgrading_from_0010_keeps_the_tokens(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "0007")
    run_sql(empty_database, BEFORE)
    before = run_sql(empty_database, ["SELECT id, digest, scopes FROM access_tokens"])
    command.upgrade(config, "head")
    command.downgrade(config, "0009")
    assert run_sql(empty_database, ["SELECT id, digest, scopes FROM access_tokens"]) == before
    command.upgrade(config, "head")


def test_the_id_of_the_newest_resource_server_deleted_is_not_given_again(
    empty_database: str,
) -> None:
    command.upgrade(alembic_config(empty_database), "head")
    first = _in_unit(empty_database, lambda uow: _create(uow, "https://a.example", 1))
    newest = _in_unit(empty_database, lambda uow: _create(uow, "https://b.example", 2))
    assert newest > first
    _in_unit(empty_database, lambda uow: uow.resources.delete(newest))
    assert _in_unit(empty_database, lambda uow: _create(uow, "https://b.example", 3)) > newest


def test_a_uri_is_registered_once(empty_database: str) -> None:
    command.upgrade(alembic_config(empty_database), "head")
    _in_unit(empty_database, lambda uow: _create(uow, "https://a.example", 1))
    with pytest.raises(Conflict):
        _in_unit(empty_database, lambda uow: _create(uow, "https://a.example", 2))


def test_a_resource_server_is_found_by_its_uri_and_id(empty_database: str) -> None:
    command.upgrade(alembic_config(empty_database), "head")
    server_id = _in_unit(empty_database, lambda uow: _create(uow, "https://a.example", 1))

    async def work(uow: Store) -> tuple[Any, ...]:
        return (
            await uow.resources.by_uri("https://a.example"),
            await uow.resources.by_uri("https://A.example"),  # the port takes normalized URIs
            await uow.resources.by_id(server_id),
            await uow.resources.everyone(),
        )

    by_uri, other, by_id, everyone = _in_unit(empty_database, work)
    assert by_uri == by_id and everyone == [by_uri] and other is None
    assert (by_uri.uri, by_uri.scopes, by_uri.client_id) == ("https://a.example", ("read",), "rs.1")
