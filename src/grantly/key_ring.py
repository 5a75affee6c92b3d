"""The key ring: Grantly's signing keys in the database (grantly/keys.py's rules), made on
first start, rotated and retired by the operator (``grantly keys``), published at
``/oauth/jwks``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from joserfc import jwt

from . import keys as rules
from .keys import Algorithm, SigningKey
from .oauth.clock import Clock
from .store.database import Database
from .store.errors import Unavailable

# Signing reads the active key at most this often per process; a rotation's activation is
# always later than this (rules.DEFAULT_ACTIVATE_AFTER), so no process signs with a key
# another does not publish.
CACHE_SECONDS = 30


@dataclass(frozen=True, slots=True)
class Retirement:
    key: SigningKey | None
    refusal: str | None


class KeyRing:
    def __init__(self, db: Database, secret_key: str, clock: Clock) -> None:
        self.db = db
        self.secret_key = secret_key
        self.clock = clock
        self._cached: tuple[int, SigningKey, Any] | None = None
        self._making: asyncio.Task[None] | None = None

    async def _make_first(self) -> None:
        try:
            await self.ensure()
        finally:
            self._making = None

    async def keys(self) -> list[SigningKey]:
        """Every key, made first if there is none yet (the first start)."""
        async with self.db.unit(write=False) as uow:
            found = await uow.signing_keys.everyone()
        return found or await self.ensure()

    async def ensure(self, alg: Algorithm = rules.DEFAULT_ALGORITHM) -> list[SigningKey]:
        """Make the first key, signing at once, unless one exists. Two processes starting
        together may both make one: both are published, and the rule of ``rules.active``
        makes every process sign with the same."""
        async with self.db.unit() as uow:
            found = await uow.signing_keys.everyone()
            if not found:
                now = self.clock.now()
                await uow.signing_keys.add(self._new(alg, now, now))
                found = await uow.signing_keys.everyone()
        return found

    def _new(self, alg: Algorithm, now: int, activates_at: int) -> SigningKey:
        made = rules.generate(alg)
        return SigningKey(
            kid=made.kid,
            alg=made.alg,
            public_jwk=made.public_jwk,
            sealed_private=rules.seal(made.private_pem, self.secret_key),
            created_at=now,
            activates_at=activates_at,
        )

    async def jwks(self) -> dict[str, Any]:
        return rules.published(await self.keys())

    async def signer(self) -> tuple[SigningKey, Any]:
        """The active key and its private key, read at most every ``CACHE_SECONDS``."""
        now = self.clock.now()
        if self._cached is not None and now - self._cached[0] < CACHE_SECONDS:
            return self._cached[1], self._cached[2]
        async with self.db.unit(write=False) as uow:
            found = await uow.signing_keys.everyone()
        current = rules.active(found, now)
        if current is None:
            # Signing happens inside a request's write unit, where no key can be written: the
            # first key is made on start (``ensure``), or, when the database was down then,
            # once this request's unit is over. After that only the operator retires keys,
            # and ``grantly keys retire`` keeps the signing one unless forced.
            if not found and self._making is None:
                self._making = asyncio.get_running_loop().create_task(self._make_first())
            raise Unavailable("no signing key is active yet: retry, or run `grantly keys rotate`.")
        private = rules.private_key(current, self.secret_key)
        self._cached = (now, current, private)
        return current, private

    async def sign(self, header: dict[str, object], claims: dict[str, object]) -> str:
        """``oauth.ports.Signer``: a compact JWS (RFC 7515) by the active key, its ``alg`` and
        ``kid`` in the header (RFC 9068 §2.1: verifiers pick the key by ``kid``)."""
        key, private = await self.signer()
        return jwt.encode({**header, "alg": key.alg, "kid": key.kid}, claims, private)

    async def rotate(
        self, activate_after: int = rules.DEFAULT_ACTIVATE_AFTER, alg: Algorithm = "ES256"
    ) -> SigningKey:
        """A new key, published now, signing ``activate_after`` seconds from now."""
        now = self.clock.now()
        new = self._new(alg, now, now + activate_after)
        async with self.db.unit() as uow:
            await uow.signing_keys.add(new)
        self._cached = None
        return new

    async def retire(self, kid: str, longest_token_lifetime: int, force: bool) -> Retirement:
        now = self.clock.now()
        async with self.db.unit() as uow:
            found = await uow.signing_keys.everyone()
            key = next((k for k in found if k.kid == kid), None)
            if key is None:
                return Retirement(None, None)
            refusal = rules.retirement_refusal(key, found, now, longest_token_lifetime)
            if refusal is not None and not (force and key.retired_at is None):
                return Retirement(key, refusal)
            await uow.signing_keys.retire(kid, now)
        self._cached = None
        return Retirement(key, None)
