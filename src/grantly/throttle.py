"""Throttling of guesses: sign-in attempts per account and per address, and client
authentication failures per client (RFC 6749 §10.10 on credentials guessing; RFC 9700 §2.5;
OWASP's authentication guidance). Only failures count, so a person who signs in correctly is
never slowed down.

Counters live in Redis when ``GRANTLY_REDIS_URL`` is set, shared by every process and host;
otherwise in the process (the same behaviour on one process). The ``limits`` library keeps
them, with a moving window. If Redis cannot be reached the throttle lets requests through and
says so in the log: an outage of the counter store must not lock everyone out.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

log = logging.getLogger("grantly.throttle")


@dataclass(frozen=True, slots=True)
class Refusal:
    retry_after: int


class Throttle:
    def __init__(
        self,
        redis_url: str | None,
        *,
        sign_in_per_account: str,
        sign_in_per_address: str,
        client_auth_per_client: str,
        key_prefix: str = "grantly",
    ) -> None:
        storage: Storage
        if redis_url:
            uri = redis_url.replace("redis://", "async+redis://", 1).replace(
                "rediss://", "async+rediss://", 1
            )
            storage = RedisStorage(uri, implementation="redispy", key_prefix=key_prefix)
        else:
            storage = MemoryStorage()
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)
        self.sign_in_per_account = parse(sign_in_per_account)
        self.sign_in_per_address = parse(sign_in_per_address)
        self.client_auth_per_client = parse(client_auth_per_client)

    async def _refusal(self, checks: list[tuple[RateLimitItem, str, str]]) -> Refusal | None:
        try:
            for limit, kind, key in checks:
                if not await self.limiter.test(limit, kind, key):
                    stats = await self.limiter.get_window_stats(limit, kind, key)
                    return Refusal(max(1, int(stats.reset_time - time.time()) + 1))
        except Exception as exc:  # the counter store is down: fail open, loudly
            log.warning("throttle unavailable: %s", type(exc).__name__)
        return None

    async def _hit(self, hits: list[tuple[RateLimitItem, str, str]]) -> None:
        try:
            for limit, kind, key in hits:
                await self.limiter.hit(limit, kind, key)
        except Exception as exc:
            log.warning("throttle unavailable: %s", type(exc).__name__)

    def _sign_in(self, account: str, address: str) -> list[tuple[RateLimitItem, str, str]]:
        return [
            (self.sign_in_per_account, "sign-in-account", account.strip().lower()),
            (self.sign_in_per_address, "sign-in-address", address),
        ]

    async def sign_in_refusal(self, account: str, address: str) -> Refusal | None:
        return await self._refusal(self._sign_in(account, address))

    async def sign_in_failed(self, account: str, address: str) -> None:
        await self._hit(self._sign_in(account, address))

    async def client_auth_refusal(self, client_id: str) -> Refusal | None:
        return await self._refusal([(self.client_auth_per_client, "client-auth", client_id)])

    async def client_auth_failed(self, client_id: str) -> None:
        await self._hit([(self.client_auth_per_client, "client-auth", client_id)])

    async def ping(self) -> bool:
        return bool(await self.storage.check())
