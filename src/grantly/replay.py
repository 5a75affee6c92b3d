"""The replay guard (``oauth.ports.ReplayGuard``): identifiers seen once, by every process.

RFC 9449 §11.1 (a DPoP proof's ``jti``) and RFC 7523 §3 (a client assertion's ``jti``) ask the
server to refuse a second use while the first could still be accepted. With
``GRANTLY_REDIS_URL`` the ids live in Redis (one ``SET NX EX``, which expires them itself);
otherwise, or when Redis cannot be reached, in the database (``used_jtis``, pruned by
``grantly tokens prune``): in a transaction of its own, so that a request that fails later
still used its proof, or, for the token endpoints (``within``), in the request's own write
transaction, which commits the decision of a refused request too (web/client_endpoints.py),
since a second write unit inside one would wait for it forever. The key is a digest: what a
client chose as jti never reaches storage as it is, nor grows its keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import weakref

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .oauth.clock import Clock
from .store.database import Database
from .store.unit import Store

log = logging.getLogger("grantly.replay")


class ReplayGuard:
    def __init__(
        self, db: Database, clock: Clock, redis_url: str | None, key_prefix: str = "grantly"
    ) -> None:
        self.db = db
        self.clock = clock
        self.prefix = key_prefix
        self.redis_url = redis_url
        # A client per event loop: a connection belongs to the loop that opened it.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
            weakref.WeakKeyDictionary()
        )

    def _redis(self) -> aioredis.Redis | None:
        if self.redis_url is None:
            return None
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = aioredis.from_url(self.redis_url)
        return client

    def within(self, uow: Store) -> InUnit:
        """The guard for a request that holds the unit ``uow`` (a reading unit writes in one
        of its own: reads do not hold up writers)."""
        return InUnit(self, uow)

    async def first_use(self, key: str, expires_at: int, uow: Store | None = None) -> bool:
        hashed = hashlib.sha256(key.encode("utf-8")).hexdigest()
        now = self.clock.now()
        redis = self._redis()
        if redis is not None:
            try:
                stored = await redis.set(
                    f"{self.prefix}:jti:{hashed}", b"1", nx=True, ex=max(1, expires_at - now)
                )
                return bool(stored)
            except (RedisError, OSError) as exc:
                log.warning("Redis unreachable for the replay guard, using the database: %s", exc)
        if uow is not None and uow.tx.write:
            return await uow.used_ids.first_use(hashed, expires_at, now)
        async with self.db.unit() as own:
            return await own.used_ids.first_use(hashed, expires_at, now)


class InUnit:
    """``ReplayGuard`` writing in a request's own unit of work."""

    def __init__(self, guard: ReplayGuard, uow: Store) -> None:
        self.guard, self.uow = guard, uow

    async def first_use(self, key: str, expires_at: int) -> bool:
        return await self.guard.first_use(key, expires_at, self.uow)
