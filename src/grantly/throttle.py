"""Throttling of guesses, built so that nobody can lock out someone else (RFC 6749 §10.10 on
credentials guessing; RFC 9700 §2.5; OWASP's authentication guidance and its "device cookies"
for lockouts that only hit untrusted clients). Only failures count, and the counters are keyed
by what an attacker controls (its address), never only by a public identifier (a client id,
an email address) that anyone can send.

Client authentication (``client_auth_failed``): a correct client credential is always served.
Client secrets are 256-bit random values: guessing them is not the threat, denial is. A failed
authentication counts for its source address and for the pair (client, address); past either
limit, failures from there are answered 429 instead of 401, and no longer written one by one to
the audit trail (the limit being reached is, once per window).

The audit trail gets a failed sign-in of an account (``sign_in_failure_audited``) within a
budget per company: the limits below bound each account's failures, not a company's, and a
company has as many accounts as it has people. Past the budget failures are counted, not
written; the last one written says so.

Sign-in (``sign_in_attempt`` before the password is checked: the attempt is counted first, so
requests sent together cannot all pass a limit before any failure is recorded; a success gives
its count back, ``sign_in_succeeded``):
- from a browser that signed in to the account before (a signed device cookie naming the
  account, ``web/accounts.py``): only that device's failures for the account count;
- from any other browser: failures count per account and address, per address, and per account.
  Past a limit, attempts are refused (429) without checking the password, so a guessing run
  learns nothing. The per-account limit stops a botnet spread over many addresses, and it blocks
  only browsers the account has never been used on: the owner's known browsers still sign in.

Counters live in Redis when ``GRANTLY_REDIS_URL`` is set, otherwise in the database
(``store/counters.py``): either way every worker and host counts the same, and a restart keeps
them. The ``limits`` library parses the limits and keeps Redis' counters; each counter is a
fixed window. If Redis cannot be reached the throttle lets requests through and says so in the
log: an outage of the counter store must not lock everyone out. Keys are HMACs of what they
count, so neither store holds an email address or an IP address.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import random
import time
from dataclasses import dataclass, field

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage, Storage

from .store.database import Database
from .store.errors import StoreError

log = logging.getLogger("grantly.throttle")


@dataclass(frozen=True, slots=True)
class Refusal:
    retry_after: int
    limit: str  # which limit refused: "account", "account_address", "address", "device" ...


SWEEP_CHANCE = 1 / 32
SWEEP_ROWS = 500


class DatabaseStorage(Storage):
    """A ``limits`` storage on Grantly's database: fixed windows in ``throttle_counters``.
    Only ``incr``, ``get`` and ``get_expiry`` are used by fixed windows."""

    STORAGE_SCHEME = ["grantly+database"]

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return (StoreError,)

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = int(time.time())
        async with self.db.unit() as uow:
            count = await uow.counters.increment(key, amount, int(expiry), now)
            if random.random() < SWEEP_CHANCE:  # noqa: S311 - not a secret, a schedule
                # Ended windows go without an operator's prune: keys an attacker invents
                # (an address, a client id) cannot pile up.
                await uow.counters.sweep(now, SWEEP_ROWS)
        return count

    async def get(self, key: str) -> int:
        async with self.db.unit(write=False) as uow:
            count, _ = await uow.counters.current(key, int(time.time()))
        return count

    async def get_expiry(self, key: str) -> float:
        now = time.time()
        async with self.db.unit(write=False) as uow:
            _, expires_at = await uow.counters.current(key, int(now))
        return float(expires_at) if expires_at is not None else now

    async def check(self) -> bool:
        await self.db.ping()
        return True

    async def reset(self) -> int | None:
        async with self.db.unit() as uow:
            return await uow.counters.clear()

    async def clear(self, key: str) -> None:
        async with self.db.unit() as uow:
            await uow.counters.clear(key)


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits, as ``limits`` strings ("10/15 minutes"), from settings."""

    sign_in_per_account_address: str = "10/15 minutes"
    sign_in_per_address: str = "50/15 minutes"
    sign_in_per_account: str = "30/15 minutes"
    sign_in_per_device: str = "10/15 minutes"
    client_auth_per_client_address: str = "20/minute"
    client_auth_per_address: str = "100/minute"
    registration_per_address: str = "20/hour"
    document_fetch_per_address: str = "60/hour"


Check = tuple[str, RateLimitItem, str]  # (the limit's name, the limit, the key counted)

# Failed authentications of one client id written to the audit trail, from all addresses: past
# it they are counted, not written. Keyed by the public client id, it changes only what is
# written, never what is answered.
AUDITED_FAILURES_PER_CLIENT = parse("30/minute")


# Failed sign-ins written to one company's audit trail, from all its accounts and addresses:
# past it they are counted, not written. Keyed by the company, it changes only what is written,
# never what is answered.
AUDITED_SIGN_IN_FAILURES_PER_COMPANY = parse("100/15 minutes")


@dataclass(slots=True)
class Attempt:
    """A sign-in attempt, counted before its password is checked."""

    refusal: Refusal | None
    reached: list[str] = field(default_factory=list)  # limits this attempt filled
    counted: list[Check] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ClientFailure:
    refusal: Refusal | None  # answer 429, not 401
    reached: bool  # this failure filled the (client, address) limit: audit that, once
    audited: bool  # write this failure to the audit trail


@dataclass(frozen=True, slots=True)
class AuditBudget:
    audited: bool  # write this failure to the audit trail
    spent: bool  # it is the last one written in this window: say that later ones are not


class Throttle:
    def __init__(
        self,
        *,
        redis_url: str | None,
        db: Database,
        secret_key: str,
        limits: Limits,
        key_prefix: str = "grantly",
    ) -> None:
        self.storage: Storage
        self.fails_open = bool(redis_url)
        if redis_url:
            uri = redis_url.replace("redis://", "async+redis://", 1).replace(
                "rediss://", "async+rediss://", 1
            )
            self.storage = RedisStorage(uri, implementation="redispy", key_prefix=key_prefix)
        else:
            self.storage = DatabaseStorage(db)
        self._secret = hashlib.sha256(b"grantly-throttle\0" + secret_key.encode()).digest()
        self.limits = {name: parse(getattr(limits, name)) for name in Limits.__dataclass_fields__}

    # --- keys -------------------------------------------------------------------------

    def digest(self, kind: str, value: str) -> str:
        """An HMAC of what is counted: the stores never hold the email or the address."""
        mac = hmac.new(self._secret, f"{kind}\0{value}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    def account_key(self, email: str) -> str:
        """The account an attempt names, as the throttle (and the device cookie) know it:
        without case or surrounding space, so no spelling escapes its count."""
        return self.digest("account", email.strip().lower())

    def address_key(self, address: str) -> str:
        """An IPv6 address counts as its /64: one host or home network is given a whole
        /64 (RFC 4291 §2.5.4 interface identifiers, RFC 6177), and rotating addresses in it
        must not reset its counts. An IPv4-mapped address counts as the IPv4 address."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return self.digest("address", address)
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            else:
                return self.digest("address", str(ipaddress.ip_network(f"{ip}/64", strict=False)))
        return self.digest("address", str(ip))

    def _check(self, name: str, *parts: str) -> Check:
        limit = self.limits[name]
        return (
            name.removeprefix("sign_in_per_").removeprefix("client_auth_per_"),
            limit,
            limit.key_for(name, *parts),
        )

    # --- counting -----------------------------------------------------------------------

    async def _count(self, checks: list[Check], amount: int = 1) -> Attempt:
        """Count on each check in order, and stop at the first one past its limit (the later
        ones are not counted: an attempt refused for its address adds nothing to the
        account's count, and invents no new key)."""
        attempt = Attempt(None)
        try:
            for check in checks:
                name, limit, key = check
                count = await self.storage.incr(key, limit.get_expiry(), amount=amount)
                attempt.counted.append(check)
                if count == limit.amount:
                    attempt.reached.append(name)
                if count > limit.amount:
                    reset = await self.storage.get_expiry(key)
                    attempt.refusal = Refusal(max(1, int(reset - time.time()) + 1), name)
                    break
        except Exception as exc:
            self._unavailable(exc)
        return attempt

    def _unavailable(self, exc: Exception) -> None:
        """Redis down: fail open, loudly. The database down: the request cannot be served
        anyway, and says so (503), rather than pass unthrottled."""
        if not self.fails_open:
            raise exc
        log.warning("throttle unavailable: %s", type(exc).__name__)

    # --- sign-in ------------------------------------------------------------------------

    def _sign_in(self, email: str, address: str, device: str | None) -> list[Check]:
        account = self.account_key(email)
        if device is not None:
            return [self._check("sign_in_per_device", account, device)]
        at = self.address_key(address)
        # The account's own count last: only attempts its address and pair let through add up.
        return [
            self._check("sign_in_per_address", at),
            self._check("sign_in_per_account_address", account, at),
            self._check("sign_in_per_account", account),
        ]

    async def sign_in_attempt(self, email: str, address: str, device: str | None = None) -> Attempt:
        """Count a sign-in attempt before its password is checked; refuse it (``refusal``)
        past a limit. ``device``: the id of a device cookie that names this account, or None
        for a browser the account has not been used on."""
        return await self._count(self._sign_in(email, address, device))

    async def sign_in_succeeded(self, attempt: Attempt) -> None:
        """Give a successful sign-in's count back: only failures count."""
        try:
            for _name, limit, key in attempt.counted:
                await self.storage.incr(key, limit.get_expiry(), amount=-1)
        except Exception as exc:
            self._unavailable(exc)

    async def sign_in_failure_audited(self, company_id: int) -> AuditBudget:
        """Whether a failed sign-in of one of the company's accounts is written to its audit
        trail: within ``AUDITED_SIGN_IN_FAILURES_PER_COMPANY``, so that strangers guessing at
        every account of a company cannot fill its trail (or the database)."""
        budget = AUDITED_SIGN_IN_FAILURES_PER_COMPANY
        key = budget.key_for("sign_in_audited", self.digest("company", str(company_id)))
        try:
            count = await self.storage.incr(key, budget.get_expiry())
        except Exception as exc:
            self._unavailable(exc)
            return AuditBudget(audited=True, spent=False)
        return AuditBudget(audited=count <= budget.amount, spent=count == budget.amount)

    # --- client authentication ------------------------------------------------------------

    async def client_auth_failed(self, client_id: str, address: str) -> ClientFailure:
        """Count a failed client authentication (RFC 6749 §2.3, §10.10). A refusal when the
        address, or the address for this client, failed too often: answer 429, not 401."""
        at = self.address_key(address)
        client = self.digest("client", client_id)
        attempt = await self._count(
            [
                self._check("client_auth_per_address", at),
                self._check("client_auth_per_client_address", client, at),
            ]
        )
        audited = False
        if attempt.refusal is None:
            audit_key = AUDITED_FAILURES_PER_CLIENT.key_for("client_auth_audited", client)
            try:
                count = await self.storage.incr(audit_key, AUDITED_FAILURES_PER_CLIENT.get_expiry())
                audited = count <= AUDITED_FAILURES_PER_CLIENT.amount
            except Exception as exc:
                self._unavailable(exc)
                audited = True
        return ClientFailure(attempt.refusal, "client_address" in attempt.reached, audited)

    # --- dynamic client registration ----------------------------------------------------

    async def registration(self, address: str) -> Refusal | None:
        """Count a client registration (RFC 7591 §5 leaves abuse to the server): a refusal
        past the address's limit. Only registrations count, so nobody can use up another
        address's budget."""
        attempt = await self._count(
            [self._check("registration_per_address", self.address_key(address))]
        )
        return attempt.refusal

    async def document_fetch(self, address: str) -> Refusal | None:
        """Count a fetch of a client metadata document on behalf of an address (a first use,
        or a refetch once its copy expired): past the limit, refused before any fetch."""
        attempt = await self._count(
            [self._check("document_fetch_per_address", self.address_key(address))]
        )
        return attempt.refusal

    async def ping(self) -> bool:
        return bool(await self.storage.check())
