"""The storage ports' contract (``grantly.oauth.ports``), one suite for every store.

The protocol core's tests run on the in-memory store of ``tests/oauth``; production runs on
SQLite or PostgreSQL. These tests run the same operations against the in-memory store and the
SQL store of the run (SQLite in the first pass of ``make test``, PostgreSQL in the second), so
that the fake and production cannot drift apart.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import update

from grantly.oauth.models import (
    Application,
    NewAuthorizationCode,
    NewTokens,
    ResourceOwner,
    User,
)
from grantly.oauth.ports import AuthorizationCodeStore, TokenStore
from grantly.store import tables as t
from grantly.store.database import open_database
from tests.conftest import World
from tests.oauth.memory import Database as MemoryDatabase
from tests.oauth.memory import MemoryAuthorizationCodes, MemoryTokens

NOW = 1_800_000_000
_serial = itertools.count(1)


@dataclass
class Ports:
    codes: AuthorizationCodeStore
    tokens: TokenStore

    async def code(self, store: Store, digest: str) -> Any:
        _, record = await self.codes.client_with_code(store.client_id, digest)
        return record


@dataclass
class Store:
    """One store under test: its ports inside a unit of work, and the facts it was seeded
    with (an application, another application of another company, an employee)."""

    name: str
    run: Callable[[Callable[[Ports], Awaitable[Any]]], Any]
    deactivate: Callable[[int], None]
    application_id: int
    other_application_id: int
    company_id: int
    user_id: int
    client_id: str
    other_client_id: str


def _memory_store() -> Store:
    db = MemoryDatabase()
    for id_, client_id, company in ((1, "one", 1), (2, "two", 2)):
        db.add_application(
            Application(id_, company, client_id, client_id, None, False, ("https://c.example",), ())
        )
    db.add_user(User(10, 1, "e@acme.example", "E", admin=False, active=True))
    ports = Ports(MemoryAuthorizationCodes(db), MemoryTokens(db))

    def run(work: Callable[[Ports], Awaitable[Any]]) -> Any:
        return asyncio.run(work(ports))

    return Store("memory", run, db.deactivate, 1, 2, 1, 10, "one", "two")


def _sql_store(world: World) -> Store:
    def run(work: Callable[[Ports], Awaitable[Any]]) -> Any:
        async def main() -> Any:
            db = open_database(world.settings.database_url)
            try:
                async with db.unit() as uow:
                    return await work(Ports(uow.codes, uow.tokens))
            finally:
                await db.close()

        return asyncio.run(main())

    def deactivate(user_id: int) -> None:
        async def main() -> None:
            db = open_database(world.settings.database_url)
            try:
                async with db.unit() as uow:
                    # The flag alone (deactivating also revokes): it is what records read.
                    await uow.tx.execute(
                        update(t.users).where(t.users.c.id == user_id).values(active=False)
                    )
            finally:
                await db.close()

        asyncio.run(main())

    return Store(
        world.settings.database_url.split(":", 1)[0],
        run,
        deactivate,
        world.app.id,
        world.other_app.id,
        world.company_a,
        world.employee.id,
        world.app.client_id,
        world.other_app.client_id,
    )


@pytest.fixture(params=["memory", "sql"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "memory":
        yield _memory_store()
    else:
        yield _sql_store(request.getfixturevalue("world"))


def _code(store: Store, **overrides: Any) -> NewAuthorizationCode:
    values: dict[str, Any] = {
        "digest": f"code-{next(_serial)}",
        "application_id": store.application_id,
        "owner": ResourceOwner("user", store.company_id, store.user_id),
        "redirect_uri": "https://c.example",
        "redirect_uri_in_request": True,
        "scopes": ("read", "write"),
        "code_challenge": None,
        "code_challenge_method": None,
        "created_at": NOW,
        "expires_at": NOW + 600,
        **overrides,
    }
    return NewAuthorizationCode(**values)


def _tokens(store: Store, family_id: int, **overrides: Any) -> NewTokens:
    serial = next(_serial)
    values: dict[str, Any] = {
        "application_id": store.application_id,
        "owner": ResourceOwner("user", store.company_id, store.user_id),
        "scopes": ("read",),
        "created_at": NOW,
        "access_digest": f"access-{serial}",
        "access_expires_at": NOW + 3600,
        "refresh_digest": f"refresh-{serial}",
        "refresh_expires_at": NOW + 86400,
        "family_id": family_id,
        "refresh_scopes": ("read", "write"),
        **overrides,
    }
    return NewTokens(**values)


def _grant(store: Store) -> tuple[int, NewTokens]:
    """A redeemed code and the tokens issued from it: (family id, tokens)."""
    code = _code(store)

    async def work(ports: Ports) -> tuple[int, NewTokens]:
        await ports.codes.save(code)
        record = await ports.code(store, code.digest)
        tokens = _tokens(store, record.id)
        assert await ports.codes.redeem(record.id, NOW, tokens)
        return record.id, tokens

    result: tuple[int, NewTokens] = store.run(work)
    return result


def test_a_code_is_read_with_its_client_and_redeemed_exactly_once(store: Store) -> None:
    code = _code(store)

    async def work(ports: Ports) -> tuple[Any, ...]:
        await ports.codes.save(code)
        application, before = await ports.codes.client_with_code(store.client_id, code.digest)
        first, second = _tokens(store, before.id), _tokens(store, before.id)
        redeemed = await ports.codes.redeem(before.id, NOW, first)
        again = await ports.codes.redeem(before.id, NOW + 1, second)
        after = await ports.code(store, code.digest)
        return (
            application,
            before,
            redeemed,
            again,
            after,
            await ports.tokens.access_token(first.access_digest),
            await ports.tokens.access_token(second.access_digest),
        )

    application, before, redeemed, again, after, first, second = store.run(work)
    assert application.id == store.application_id
    assert (before.owner, before.scopes, before.redirect_uri) == (
        code.owner,
        code.scopes,
        code.redirect_uri,
    )
    assert before.consumed_at is None and before.redirect_uri_in_request is True
    assert before.owner_active is True
    assert (redeemed, again) == (True, False)
    assert after.consumed_at == NOW
    assert first is not None and second is None  # the loser's tokens were never stored


def test_a_code_is_read_whichever_client_asks_and_an_unknown_client_reads_nothing(
    store: Store,
) -> None:
    code = _code(store)

    async def work(ports: Ports) -> tuple[Any, ...]:
        await ports.codes.save(code)
        other, seen = await ports.codes.client_with_code(store.other_client_id, code.digest)
        unknown = await ports.codes.client_with_code("no-such-client", code.digest)
        return other, seen, unknown, await ports.code(store, "no-such-code")

    other, seen, unknown, missing = store.run(work)
    assert other.id == store.other_application_id
    assert seen.application_id == store.application_id  # the core refuses it, unburnt
    assert unknown == (None, None) and missing is None


def test_a_burnt_code_is_used_without_tokens(store: Store) -> None:
    code = _code(store)

    async def work(ports: Ports) -> tuple[Any, ...]:
        await ports.codes.save(code)
        record = await ports.code(store, code.digest)
        burnt = await ports.codes.redeem(record.id, NOW, None)
        return burnt, await ports.codes.redeem(record.id, NOW, _tokens(store, record.id))

    assert store.run(work) == (True, False)


def test_records_say_whether_the_person_who_authorized_is_still_active(store: Store) -> None:
    code = _code(store)
    _family, tokens = _grant(store)
    store.run(lambda ports: ports.codes.save(code))
    store.deactivate(store.user_id)

    async def work(ports: Ports) -> tuple[Any, ...]:
        found = await ports.code(store, code.digest)
        _, refresh = await ports.tokens.client_with_refresh_token(
            store.client_id, tokens.refresh_digest or ""
        )
        _, access = await ports.tokens.client_with_access_token(
            store.client_id, tokens.access_digest
        )
        return found, refresh, access

    found, refresh, access = store.run(work)
    assert (found.owner_active, refresh.owner_active) == (False, False)
    assert access.user_active is False and not access.is_active(NOW)


def test_issued_tokens_are_found_by_digest_as_issued(store: Store) -> None:
    family, tokens = _grant(store)

    async def work(ports: Ports) -> tuple[Any, ...]:
        return (
            await ports.tokens.access_token(tokens.access_digest),
            await ports.tokens.refresh_token(tokens.refresh_digest or ""),
            await ports.tokens.access_token("no-such-token"),
            await ports.tokens.refresh_token("no-such-token"),
        )

    access, refresh, unknown_access, unknown_refresh = store.run(work)
    assert unknown_access is None and unknown_refresh is None
    assert (access.application_id, access.owner, access.scopes) == (
        store.application_id,
        tokens.owner,
        ("read",),
    )
    assert (access.created_at, access.expires_at, access.revoked_at) == (NOW, NOW + 3600, None)
    assert access.is_active(NOW) and not access.is_active(NOW + 3600)
    assert (refresh.family_id, refresh.scopes, refresh.expires_at) == (
        family,
        ("read", "write"),
        NOW + 86400,
    )
    assert (refresh.revoked_at, refresh.rotated_at, refresh.owner_active) == (None, None, True)


def test_the_audience_of_a_code_and_of_its_tokens_is_kept_as_issued(store: Store) -> None:
    grant = ("https://reports.example/api", "/api")
    code = _code(store, audience=grant)

    async def work(ports: Ports) -> tuple[Any, ...]:
        await ports.codes.save(code)
        record = await ports.code(store, code.digest)
        narrowed = _tokens(store, record.id, audience=grant[:1], refresh_audience=grant)
        default = _tokens(store, record.id)
        await ports.tokens.issue(narrowed)
        await ports.tokens.issue(default)
        return (
            record,
            await ports.tokens.access_token(narrowed.access_digest),
            await ports.tokens.refresh_token(narrowed.refresh_digest or ""),
            await ports.tokens.access_token(default.access_digest),
            await ports.tokens.refresh_token(default.refresh_digest or ""),
        )

    record, access, refresh, default_access, default_refresh = store.run(work)
    assert record.audience == grant
    assert access.audience == ("https://reports.example/api",)
    assert refresh.audience == grant
    assert default_access.audience == default_refresh.audience == ("/api",)


def test_a_refresh_token_rotates_exactly_once_with_its_successor(store: Store) -> None:
    family, tokens = _grant(store)
    winner, loser = _tokens(store, family), _tokens(store, family)

    async def work(ports: Ports) -> tuple[Any, ...]:
        application, record = await ports.tokens.client_with_refresh_token(
            store.client_id, tokens.refresh_digest or ""
        )
        assert application.id == store.application_id
        first = await ports.tokens.rotate(record.id, family, NOW + 5, winner)
        second = await ports.tokens.rotate(record.id, family, NOW + 6, loser)
        after = await ports.tokens.refresh_token(tokens.refresh_digest or "")
        return (
            first,
            second,
            after.rotated_at,
            await ports.tokens.refresh_token(winner.refresh_digest or "") is not None,
            await ports.tokens.refresh_token(loser.refresh_digest or "") is not None,
        )

    assert store.run(work) == (True, False, NOW + 5, True, False)


def test_revoking_a_family_revokes_its_tokens_only_and_can_keep_one(store: Store) -> None:
    family, first = _grant(store)
    _other_family, other = _grant(store)
    second = _tokens(store, family)
    store.run(lambda ports: ports.tokens.issue(second))

    async def work(ports: Ports) -> dict[str, Any]:
        kept = await ports.tokens.refresh_token(second.refresh_digest or "")
        await ports.tokens.lock_family(family)
        await ports.tokens.revoke_family(family, NOW + 9, keep=kept.id)
        seen = {}
        for name, issued in (("first", first), ("second", second), ("other", other)):
            seen[name + " access"] = (
                await ports.tokens.access_token(issued.access_digest)
            ).revoked_at
            seen[name + " refresh"] = (
                await ports.tokens.refresh_token(issued.refresh_digest or "")
            ).revoked_at
        seen["rotate revoked"] = await ports.tokens.rotate(
            (await ports.tokens.refresh_token(first.refresh_digest or "")).id,
            family,
            NOW + 10,
            _tokens(store, family),
        )
        return seen

    assert store.run(work) == {
        "first access": NOW + 9,
        "first refresh": NOW + 9,
        "second access": NOW + 9,
        "second refresh": None,  # kept
        "other access": None,
        "other refresh": None,
        "rotate revoked": False,
    }


def test_a_used_successor_is_known(store: Store) -> None:
    family, first = _grant(store)
    second = _tokens(store, family)

    async def work(ports: Ports) -> tuple[bool, bool]:
        record = await ports.tokens.refresh_token(first.refresh_digest or "")
        await ports.tokens.rotate(record.id, family, NOW + 1, second)
        before = await ports.tokens.successor_used(family, record.id)
        successor = await ports.tokens.refresh_token(second.refresh_digest or "")
        await ports.tokens.rotate(successor.id, family, NOW + 2, _tokens(store, family))
        return before, await ports.tokens.successor_used(family, record.id)

    assert store.run(work) == (False, True)


def test_one_access_token_is_revoked_alone(store: Store) -> None:
    _, first = _grant(store)
    _, other = _grant(store)

    async def work(ports: Ports) -> tuple[Any, ...]:
        access = await ports.tokens.access_token(first.access_digest)
        await ports.tokens.revoke_access_token(access.id, NOW + 3)
        await ports.tokens.revoke_access_token(access.id, NOW + 4)  # again: the first time stays
        return (
            (await ports.tokens.access_token(first.access_digest)).revoked_at,
            (await ports.tokens.refresh_token(first.refresh_digest or "")).revoked_at,
            (await ports.tokens.access_token(other.access_digest)).revoked_at,
        )

    assert store.run(work) == (NOW + 3, None, None)


def test_company_tokens_of_one_application_and_company_are_revoked_together(
    store: Store,
) -> None:
    company = ResourceOwner("company", store.company_id, store.user_id)
    family, user_tokens = _grant(store)
    company_tokens = [
        _tokens(
            store,
            family,
            owner=company,
            access_expires_at=None,
            refresh_digest=None,
            refresh_expires_at=None,
        )
        for _ in range(2)
    ]
    # A client credentials token acts for the company too, but expires: it is not replaced.
    machine_token = _tokens(
        store, family, owner=company, refresh_digest=None, refresh_expires_at=None
    )

    async def work(ports: Ports) -> tuple[Any, ...]:
        for issued in [*company_tokens, machine_token]:
            await ports.tokens.issue(issued)
        await ports.tokens.revoke_company_tokens(store.other_application_id, store.company_id, NOW)
        untouched = (await ports.tokens.access_token(company_tokens[0].access_digest)).revoked_at
        await ports.tokens.revoke_company_tokens(store.application_id, store.company_id, NOW + 7)
        return (
            untouched,
            *[
                (await ports.tokens.access_token(t.access_digest)).revoked_at
                for t in company_tokens
            ],
            (await ports.tokens.access_token(user_tokens.access_digest)).revoked_at,
            (await ports.tokens.refresh_token(company_tokens[0].access_digest)),
            (await ports.tokens.access_token(machine_token.access_digest)).revoked_at,
        )

    assert store.run(work) == (None, NOW + 7, NOW + 7, None, None, None)


def test_company_tokens_never_expire(store: Store) -> None:
    company = ResourceOwner("company", store.company_id, store.user_id)
    family, _ = _grant(store)
    issued = _tokens(
        store,
        family,
        owner=company,
        access_expires_at=None,
        refresh_digest=None,
        refresh_expires_at=None,
    )

    async def work(ports: Ports) -> Any:
        await ports.tokens.issue(issued)
        return await ports.tokens.access_token(issued.access_digest)

    access = store.run(work)
    assert access.expires_at is None and access.is_active(NOW + 10 * 365 * 86400)
    store.deactivate(store.user_id)  # the admin who authorized it leaves: it acts for the company
    assert store.run(lambda ports: ports.tokens.access_token(issued.access_digest)).is_active(NOW)
