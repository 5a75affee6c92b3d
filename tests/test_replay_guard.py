"""The replay guard: a DPoP proof's or a client assertion's jti is good once across every
process and host, in Redis when configured, else in the database (RFC 9449 §11.1)."""

from __future__ import annotations

import asyncio
import secrets

import redis

from grantly.oauth.clock import FrozenClock
from grantly.replay import ReplayGuard
from grantly.store.database import open_database
from tests.conftest import World, count_rows

REDIS = "redis://127.0.0.1:6379/0"


def _uses(world: World, redis_url: str | None, prefix: str, key: str) -> list[bool]:
    """The key used once on each of two "hosts" (two guards, two connection pools), then
    again after it expired."""
    clock = FrozenClock(1_900_000_000)

    async def main() -> list[bool]:
        first_db = open_database(world.settings.database_url)
        second_db = open_database(world.settings.database_url)
        one = ReplayGuard(first_db, clock, redis_url, prefix)
        two = ReplayGuard(second_db, clock, redis_url, prefix)
        try:
            seen = [
                await one.first_use(key, clock.now() + 60),
                await two.first_use(key, clock.now() + 60),
                await one.first_use(key, clock.now() + 60),
            ]
            clock.advance(61)
            if redis_url != REDIS:  # Redis expires keys by its own clock
                seen.append(await two.first_use(key, clock.now() + 60))
            return seen
        finally:
            await first_db.close()
            await second_db.close()

    return asyncio.run(main())


def test_without_redis_the_database_remembers_each_id_until_it_expires(world: World) -> None:
    assert _uses(world, None, "t", "dpop:abc:1") == [True, False, False, True]
    assert count_rows(world.settings, "used_jtis") == 1


def test_with_redis_every_host_sees_the_same_ids(world: World) -> None:
    prefix = "grantly-test-" + secrets.token_hex(4)
    assert _uses(world, REDIS, prefix, "dpop:abc:1") == [True, False, False]
    stored = redis.Redis.from_url(REDIS)
    try:
        keys = stored.keys(prefix + ":jti:*")
        assert len(keys) == 1
        assert 0 < stored.ttl(keys[0]) <= 60
        # What the client chose as jti is not stored as it is.
        assert b"abc" not in keys[0]
    finally:
        stored.delete(*stored.keys(prefix + ":*"))
        stored.close()
    assert count_rows(world.settings, "used_jtis") == 0


def test_an_unreachable_redis_falls_back_to_the_database(world: World) -> None:
    assert _uses(world, "redis://127.0.0.1:1/0", "t", "dpop:abc:2") == [True, False, False, True]
