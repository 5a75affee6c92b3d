"""An in-memory implementation of the storage ports of ``grantly.oauth.ports``.

It behaves like ``grantly.store``'s repositories do on a database, not like a mock: rows live in
dicts keyed by the digest of their secret, ids are allocated in sequence, ``consume`` and
``rotate`` succeed exactly once, and ``revoke_family`` revokes every access and refresh token of
one authorization grant.

Every operation first yields to the event loop once, as a database round trip does, and then
runs to completion without yielding, as one SQL statement does. So requests run concurrently with
``asyncio.gather`` interleave between store operations but never inside one, which is what lets
the tests exercise races.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from grantly.oauth.models import (
    DEFAULT_AUDIENCE,
    AccessToken,
    Application,
    Audience,
    AuthorizationCode,
    NewAuthorizationCode,
    NewTokens,
    ResourceOwner,
    ResourceServer,
    User,
)
from grantly.oauth.models import RefreshToken as RefreshTokenRecord

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to completion on a fresh event loop (pytest-asyncio is not used)."""
    return asyncio.run(coroutine)


async def _round_trip() -> None:
    await asyncio.sleep(0)


@dataclass
class _CodeRow:
    id: int
    code: NewAuthorizationCode
    consumed_at: int | None = None

    def record(self, owner_active: bool) -> AuthorizationCode:
        return AuthorizationCode(
            id=self.id,
            application_id=self.code.application_id,
            owner=self.code.owner,
            redirect_uri=self.code.redirect_uri,
            redirect_uri_in_request=self.code.redirect_uri_in_request,
            scopes=self.code.scopes,
            code_challenge=self.code.code_challenge,
            code_challenge_method=self.code.code_challenge_method,
            expires_at=self.code.expires_at,
            consumed_at=self.consumed_at,
            owner_active=owner_active,
            audience=self.code.audience,
        )


@dataclass
class _AccessRow:
    id: int
    application_id: int
    owner: ResourceOwner
    scopes: tuple[str, ...]
    family_id: int
    created_at: int
    expires_at: int | None
    revoked_at: int | None = None
    audience: Audience = DEFAULT_AUDIENCE


@dataclass
class _RefreshRow:
    id: int
    application_id: int
    owner: ResourceOwner
    scopes: tuple[str, ...]
    family_id: int
    created_at: int
    expires_at: int
    revoked_at: int | None = None
    rotated_at: int | None = None
    audience: Audience = DEFAULT_AUDIENCE


@dataclass
class Database:
    """The tables. Tests seed ``applications`` and ``users`` and read the rest."""

    applications: dict[str, Application] = field(default_factory=dict)  # by client_id
    users: dict[int, User] = field(default_factory=dict)  # by id
    codes: dict[str, _CodeRow] = field(default_factory=dict)  # by digest
    access_tokens: dict[str, _AccessRow] = field(default_factory=dict)  # by digest
    refresh_tokens: dict[str, _RefreshRow] = field(default_factory=dict)  # by digest
    resource_servers: dict[str, ResourceServer] = field(default_factory=dict)  # by uri
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def next_id(self) -> int:
        return next(self._ids)

    def add_application(self, application: Application) -> Application:
        self.applications[application.client_id] = application
        return application

    def add_resource_server(self, server: ResourceServer) -> ResourceServer:
        self.resource_servers[server.uri] = server
        return server

    def add_user(self, user: User) -> User:
        self.users[user.id] = user
        return user

    def deactivate(self, user_id: int) -> None:
        self.users[user_id] = replace(self.users[user_id], active=False)

    def user_is_active(self, user_id: int | None) -> bool:
        """As the SQL store reads it with a grant's record: no such user is not active."""
        user = self.users.get(user_id) if user_id is not None else None
        return user is not None and user.active

    def application_by_id(self, application_id: int) -> Application | None:
        return next((a for a in self.applications.values() if a.id == application_id), None)


class MemoryApplications:
    """``ApplicationStore``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def by_client_id(self, client_id: str) -> Application | None:
        await _round_trip()
        return self.db.applications.get(client_id)


class MemoryResourceServers:
    """``ResourceStore``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def by_uri(self, uri: str) -> ResourceServer | None:
        await _round_trip()
        return self.db.resource_servers.get(uri)


class MemoryAuthorizationCodes:
    """``AuthorizationCodeStore``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def save(self, code: NewAuthorizationCode) -> None:
        await _round_trip()
        if code.digest in self.db.codes:
            raise ValueError("UNIQUE constraint failed: authorization_codes.digest")
        self.db.codes[code.digest] = _CodeRow(self.db.next_id(), code)

    async def consume(self, digest: str, application_id: int, now: int) -> AuthorizationCode | None:
        await _round_trip()
        row = self.db.codes.get(digest)
        if row is None or row.consumed_at is not None or row.code.application_id != application_id:
            return None
        row.consumed_at = now
        return row.record(self.db.user_is_active(row.code.owner.user_id))

    async def find(self, digest: str) -> AuthorizationCode | None:
        await _round_trip()
        return self._record(digest)

    def _record(self, digest: str) -> AuthorizationCode | None:
        row = self.db.codes.get(digest)
        return None if row is None else row.record(self.db.user_is_active(row.code.owner.user_id))

    async def client_with_code(
        self, client_id: str, digest: str
    ) -> tuple[Application | None, AuthorizationCode | None]:
        await _round_trip()
        application = self.db.applications.get(client_id)
        if application is None:  # the SQL store reads the code joined to the client's row
            return None, None
        return application, self._record(digest)

    async def redeem(self, code_id: int, now: int, tokens: NewTokens | None) -> bool:
        await _round_trip()
        row = next((r for r in self.db.codes.values() if r.id == code_id), None)
        if row is None or row.consumed_at is not None:
            return False
        if tokens is not None:
            _store_tokens(self.db, tokens)
        row.consumed_at = now
        return True


class MemoryTokens:
    """``TokenStore``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def issue(self, tokens: NewTokens) -> None:
        await _round_trip()
        _store_tokens(self.db, tokens)

    async def refresh_token(self, digest: str) -> RefreshTokenRecord | None:
        await _round_trip()
        return self._refresh_record(digest)

    def _refresh_record(self, digest: str) -> RefreshTokenRecord | None:
        row = self.db.refresh_tokens.get(digest)
        if row is None:
            return None
        return RefreshTokenRecord(
            id=row.id,
            application_id=row.application_id,
            owner=row.owner,
            scopes=row.scopes,
            family_id=row.family_id,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            rotated_at=row.rotated_at,
            owner_active=self.db.user_is_active(row.owner.user_id),
            audience=row.audience,
        )

    async def rotate(
        self, refresh_token_id: int, family_id: int, now: int, successor: NewTokens
    ) -> bool:
        await _round_trip()
        for row in self.db.refresh_tokens.values():
            if row.id == refresh_token_id and row.rotated_at is None and row.revoked_at is None:
                _store_tokens(self.db, successor)
                row.rotated_at = now
                return True
        return False

    async def client_with_refresh_token(
        self, client_id: str, digest: str
    ) -> tuple[Application | None, RefreshTokenRecord | None]:
        await _round_trip()
        application = self.db.applications.get(client_id)
        if application is None:
            return None, None
        return application, self._refresh_record(digest)

    async def client_with_access_token(
        self, client_id: str, digest: str
    ) -> tuple[Application | None, AccessToken | None]:
        await _round_trip()
        application = self.db.applications.get(client_id)
        if application is None:
            return None, None
        return application, self._access_record(digest)

    async def resource_server_with_access_token(
        self, client_id: str, digest: str
    ) -> tuple[ResourceServer | None, AccessToken | None]:
        await _round_trip()
        server = next(
            (s for s in self.db.resource_servers.values() if s.client_id == client_id), None
        )
        if server is None:
            return None, None
        return server, self._access_record(digest)

    async def lock_family(self, family_id: int) -> None:
        # One statement runs to completion without yielding here, so there is nothing to order.
        await _round_trip()

    async def successor_used(self, family_id: int, refresh_token_id: int) -> bool:
        await _round_trip()
        return any(
            row.family_id == family_id and row.id > refresh_token_id and row.rotated_at is not None
            for row in self.db.refresh_tokens.values()
        )

    async def revoke_family(self, family_id: int, now: int, keep: int | None = None) -> None:
        await _round_trip()
        rows: list[_AccessRow | _RefreshRow] = [
            *self.db.access_tokens.values(),
            *(row for row in self.db.refresh_tokens.values() if row.id != keep),
        ]
        for row in rows:
            if row.family_id == family_id and row.revoked_at is None:
                row.revoked_at = now

    async def retire_consent(self, application_id: int, owner: ResourceOwner, now: int) -> None:
        await _round_trip()  # no consents here

    async def revoke_access_token(self, access_token_id: int, now: int) -> None:
        await _round_trip()
        for row in self.db.access_tokens.values():
            if row.id == access_token_id and row.revoked_at is None:
                row.revoked_at = now

    async def revoke_company_tokens(self, application_id: int, company_id: int, now: int) -> None:
        await _round_trip()
        for row in self.db.access_tokens.values():
            if (
                row.application_id == application_id
                and row.owner.type == "company"
                and row.owner.company_id == company_id
                and row.expires_at is None
                and row.revoked_at is None
            ):
                row.revoked_at = now

    async def access_token(self, digest: str) -> AccessToken | None:
        await _round_trip()
        return self._access_record(digest)

    def _access_record(self, digest: str) -> AccessToken | None:
        row = self.db.access_tokens.get(digest)
        if row is None:
            return None
        application = self.db.application_by_id(row.application_id)
        if application is None:  # the SQL store joins applications: no application, no token
            return None
        user_active = True
        if row.owner.type == "user" and row.owner.user_id is not None:
            user = self.db.users.get(row.owner.user_id)
            user_active = True if user is None else user.active  # COALESCE(users.active, TRUE)
        return AccessToken(
            id=row.id,
            application_id=row.application_id,
            client_id=application.client_id,
            owner=row.owner,
            scopes=row.scopes,
            created_at=row.created_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            user_active=user_active,
            audience=row.audience,
        )


def _store_tokens(db: Database, tokens: NewTokens) -> None:
    """The rows of one issuance (unique digests, as the SQL store's indexes make them)."""
    if tokens.access_digest in db.access_tokens:
        raise ValueError("UNIQUE constraint failed: access_tokens.digest")
    db.access_tokens[tokens.access_digest] = _AccessRow(
        id=db.next_id(),
        application_id=tokens.application_id,
        owner=tokens.owner,
        scopes=tokens.scopes,
        family_id=tokens.family_id,
        created_at=tokens.created_at,
        expires_at=tokens.access_expires_at,
        audience=tokens.audience,
    )
    if tokens.refresh_digest is not None:
        assert tokens.refresh_expires_at is not None
        if tokens.refresh_digest in db.refresh_tokens:
            raise ValueError("UNIQUE constraint failed: refresh_tokens.digest")
        db.refresh_tokens[tokens.refresh_digest] = _RefreshRow(
            id=db.next_id(),
            application_id=tokens.application_id,
            owner=tokens.owner,
            scopes=tokens.refresh_scopes,
            family_id=tokens.family_id,
            created_at=tokens.created_at,
            expires_at=tokens.refresh_expires_at,
            audience=tokens.refresh_audience,
        )
