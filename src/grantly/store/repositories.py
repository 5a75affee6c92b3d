"""Repositories: the ``oauth.ports`` Protocols, and the admin operations, over one connection.

Hot paths (code exchange, refresh, Bearer validation) use SQLAlchemy Core and one indexed
statement each; the exactly-once operations are single conditional UPDATEs, so that the
database, not the process, decides which of several racing requests wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from ..oauth.models import (
    AccessToken,
    Application,
    AuthorizationCode,
    NewAuthorizationCode,
    NewTokens,
    RefreshToken,
    ResourceOwner,
    User,
)
from . import tables as t
from .prepared import Prepared


def _owner(row: Row[Any]) -> ResourceOwner:
    return ResourceOwner(row.owner_type, row.company_id, row.user_id)


def _scopes(value: str) -> tuple[str, ...]:
    return tuple(value.split())


def _active(value: Any) -> bool:
    """A user's ``active`` read with a grant's record (NULL: no such user, so not active)."""
    return bool(value)


def _application(row: Row[Any]) -> Application:
    return Application(
        id=row.id,
        company_id=row.company_id,
        name=row.name,
        client_id=row.client_id,
        secret_digest=row.secret_digest,
        confidential=row.confidential,
        redirect_uris=tuple(row.redirect_uris.splitlines()),
        scopes=_scopes(row.scopes),
        consent=row.consent,
        access_token_lifetime=row.access_token_lifetime,
    )


def _user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        company_id=row.company_id,
        email=row.email,
        name=row.name,
        admin=row.admin,
        active=row.active,
    )


@dataclass(frozen=True, slots=True)
class Company:
    id: int
    name: str


# The statements of the hot paths (every token request, introspection and resource request),
# built once and run at the driver level (``prepared``; issue 6's profile).
_APPLICATION_BY_CLIENT_ID = Prepared(
    select(t.applications).where(t.applications.c.client_id == bindparam("client_id"))
)
# The user's ``active`` comes with a code or a refresh token (the grants check it): one statement.
_OWNER_ACTIVE_OF_REFRESH_TOKEN = (
    select(t.users.c.active).where(t.users.c.id == t.refresh_tokens.c.user_id).scalar_subquery()
)
_OWNER_ACTIVE_OF_CODE = (
    select(t.users.c.active)
    .where(t.users.c.id == t.authorization_codes.c.user_id)
    .scalar_subquery()
)
_REFRESH_TOKEN_BY_DIGEST = Prepared(
    select(t.refresh_tokens, _OWNER_ACTIVE_OF_REFRESH_TOKEN.label("owner_active")).where(
        t.refresh_tokens.c.digest == bindparam("digest")
    )
)
_ACCESS_TOKEN_BY_DIGEST = Prepared(
    select(
        t.access_tokens,
        t.applications.c.client_id,
        func.coalesce(t.users.c.active, True).label("user_active"),
        # The person and the company, read with the token: a resource request needs them,
        # and one statement sees them in one state (no termination slips in between).
        t.users.c.email.label("user_email"),
        t.users.c.name.label("user_name"),
        t.users.c.admin.label("user_admin"),
        t.companies.c.name.label("company_name"),
    )
    .join(t.applications, t.applications.c.id == t.access_tokens.c.application_id)
    .join(t.companies, t.companies.c.id == t.access_tokens.c.company_id)
    .outerjoin(
        t.users,
        and_(t.users.c.id == t.access_tokens.c.user_id, t.access_tokens.c.owner_type == "user"),
    )
    .where(t.access_tokens.c.digest == bindparam("digest"))
)
_CONSUME_CODE = Prepared(
    update(t.authorization_codes)
    .where(
        t.authorization_codes.c.digest == bindparam("code_digest"),
        t.authorization_codes.c.application_id == bindparam("code_application_id"),
        t.authorization_codes.c.consumed_at.is_(None),
    )
    .values(consumed_at=bindparam("now"))
    .returning(t.authorization_codes, _OWNER_ACTIVE_OF_CODE.label("owner_active"))
)
_ROTATE = Prepared(
    update(t.refresh_tokens)
    .where(
        t.refresh_tokens.c.id == bindparam("refresh_token_id"),
        t.refresh_tokens.c.rotated_at.is_(None),
        t.refresh_tokens.c.revoked_at.is_(None),
    )
    .values(rotated_at=bindparam("now"))
)
_INSERT_ACCESS_TOKEN = Prepared(insert(t.access_tokens))
_INSERT_REFRESH_TOKEN = Prepared(insert(t.refresh_tokens))
_USER_IS_ACTIVE = Prepared(select(t.users.c.active).where(t.users.c.id == bindparam("user_id")))
_USER_BY_ID = Prepared(select(t.users).where(t.users.c.id == bindparam("user_id")))
_COMPANY_BY_ID = Prepared(select(t.companies).where(t.companies.c.id == bindparam("company_id")))
_LOCK_FAMILY = Prepared(
    select(t.authorization_codes.c.id)
    .where(t.authorization_codes.c.id == bindparam("family_id"))
    .with_for_update()
)


class Applications:
    """``ApplicationStore`` plus the dashboard's operations on applications."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def by_client_id(self, client_id: str) -> Application | None:
        row = await _APPLICATION_BY_CLIENT_ID.first(self.connection, {"client_id": client_id})
        return _application(row) if row else None

    async def get(self, application_id: int, company_id: int) -> Application | None:
        """An application, only if it belongs to ``company_id`` (tenancy)."""
        row = (
            await self.connection.execute(
                select(t.applications).where(
                    t.applications.c.id == application_id,
                    t.applications.c.company_id == company_id,
                )
            )
        ).first()
        return _application(row) if row else None

    async def for_company(self, company_id: int) -> list[Application]:
        rows = await self.connection.execute(
            select(t.applications)
            .where(t.applications.c.company_id == company_id)
            .order_by(t.applications.c.name, t.applications.c.id)
        )
        return [_application(row) for row in rows]

    async def create(
        self,
        *,
        company_id: int,
        name: str,
        client_id: str,
        secret_digest: str | None,
        confidential: bool,
        redirect_uris: Sequence[str],
        scopes: Sequence[str],
        now: int,
        consent: str = "always",
        access_token_lifetime: int | None = None,
    ) -> Application:
        result = await self.connection.execute(
            insert(t.applications)
            .values(
                company_id=company_id,
                name=name,
                client_id=client_id,
                secret_digest=secret_digest,
                confidential=confidential,
                redirect_uris="\n".join(redirect_uris),
                scopes=" ".join(scopes),
                created_at=now,
                updated_at=now,
                consent=consent,
                access_token_lifetime=access_token_lifetime,
            )
            .returning(t.applications)
        )
        return _application(result.one())

    async def update(
        self,
        application: Application,
        *,
        name: str,
        confidential: bool,
        secret_digest: str | None,
        redirect_uris: Sequence[str],
        scopes: Sequence[str],
        now: int,
        consent: str = "always",
        access_token_lifetime: int | None = None,
    ) -> Application:
        result = await self.connection.execute(
            update(t.applications)
            .where(t.applications.c.id == application.id)
            .values(
                name=name,
                confidential=confidential,
                secret_digest=secret_digest,
                redirect_uris="\n".join(redirect_uris),
                scopes=" ".join(scopes),
                updated_at=now,
                consent=consent,
                access_token_lifetime=access_token_lifetime,
            )
            .returning(t.applications)
        )
        return _application(result.one())

    async def set_secret_digest(self, application_id: int, secret_digest: str, now: int) -> None:
        await self.connection.execute(
            update(t.applications)
            .where(t.applications.c.id == application_id)
            .values(secret_digest=secret_digest, updated_at=now)
        )

    async def revoke_all(self, application_id: int, now: int) -> None:
        """Revoke every token of an application and drop its unused codes."""
        for table in (t.access_tokens, t.refresh_tokens):
            await self.connection.execute(
                update(table)
                .where(table.c.application_id == application_id, table.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        await self.connection.execute(
            delete(t.authorization_codes).where(
                t.authorization_codes.c.application_id == application_id
            )
        )

    async def delete(self, application_id: int) -> None:
        """Delete an application with its codes and tokens: they stop working at once."""
        for table in (t.access_tokens, t.refresh_tokens, t.authorization_codes):
            await self.connection.execute(
                delete(table).where(table.c.application_id == application_id)
            )
        await self.connection.execute(
            delete(t.applications).where(t.applications.c.id == application_id)
        )


class AuthorizationCodes:
    """``AuthorizationCodeStore``."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def save(self, code: NewAuthorizationCode) -> None:
        await self.connection.execute(
            insert(t.authorization_codes).values(
                digest=code.digest,
                application_id=code.application_id,
                owner_type=code.owner.type,
                company_id=code.owner.company_id,
                user_id=code.owner.user_id,
                redirect_uri=code.redirect_uri,
                redirect_uri_in_request=code.redirect_uri_in_request,
                scopes=" ".join(code.scopes),
                code_challenge=code.code_challenge,
                code_challenge_method=code.code_challenge_method,
                created_at=code.created_at,
                expires_at=code.expires_at,
            )
        )

    async def consume(self, digest: str, application_id: int, now: int) -> AuthorizationCode | None:
        row = await _CONSUME_CODE.first(
            self.connection,
            {"code_digest": digest, "code_application_id": application_id, "now": now},
        )
        return self._code(row, owner_active=_active(row.owner_active)) if row else None

    async def find(self, digest: str) -> AuthorizationCode | None:
        row = (
            await self.connection.execute(
                select(t.authorization_codes).where(t.authorization_codes.c.digest == digest)
            )
        ).first()
        return self._code(row) if row else None

    @staticmethod
    def _code(row: Row[Any], owner_active: bool | None = None) -> AuthorizationCode:
        return AuthorizationCode(
            id=row.id,
            application_id=row.application_id,
            owner=_owner(row),
            redirect_uri=row.redirect_uri,
            redirect_uri_in_request=row.redirect_uri_in_request,
            scopes=_scopes(row.scopes),
            code_challenge=row.code_challenge,
            code_challenge_method=row.code_challenge_method,
            expires_at=row.expires_at,
            consumed_at=row.consumed_at,
            owner_active=owner_active,
        )


class Tokens:
    """``TokenStore``."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def issue(self, tokens: NewTokens) -> None:
        owner = {
            "application_id": tokens.application_id,
            "owner_type": tokens.owner.type,
            "company_id": tokens.owner.company_id,
            "user_id": tokens.owner.user_id,
            "scopes": " ".join(tokens.scopes),
            "family_id": tokens.family_id,
            "created_at": tokens.created_at,
        }
        # Deferred: sent with the unit's next statement or its COMMIT (the audit event's
        # insert, usually), in one round trip on PostgreSQL.
        await _INSERT_ACCESS_TOKEN.defer(
            self.connection,
            {**owner, "digest": tokens.access_digest, "expires_at": tokens.access_expires_at},
        )
        if tokens.refresh_digest is not None:
            assert tokens.refresh_expires_at is not None
            await _INSERT_REFRESH_TOKEN.defer(
                self.connection,
                {
                    **owner,
                    "digest": tokens.refresh_digest,
                    "expires_at": tokens.refresh_expires_at,
                    "scopes": " ".join(tokens.refresh_scopes),
                },
            )

    async def refresh_token(self, digest: str) -> RefreshToken | None:
        row = await _REFRESH_TOKEN_BY_DIGEST.first(self.connection, {"digest": digest})
        if row is None:
            return None
        return RefreshToken(
            id=row.id,
            application_id=row.application_id,
            owner=_owner(row),
            scopes=_scopes(row.scopes),
            family_id=row.family_id,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            rotated_at=row.rotated_at,
            owner_active=_active(row.owner_active),
        )

    async def rotate(self, refresh_token_id: int, now: int) -> bool:
        changed = await _ROTATE.rowcount(
            self.connection, {"refresh_token_id": refresh_token_id, "now": now}
        )
        return changed == 1

    async def lock_family(self, family_id: int) -> None:
        # Everything that changes a family's tokens first locks its anchor, the authorization
        # code row (PostgreSQL FOR UPDATE), so all of them take their row locks in one order.
        # Without it a rotation waiting on the refresh token row and a revocation holding the
        # anchor deadlocked (40P01, seen in the cross-process race test). SQLite needs no lock:
        # a writing transaction holds the whole database from BEGIN IMMEDIATE.
        if self.connection.dialect.name == "sqlite":
            return
        await _LOCK_FAMILY.all(self.connection, {"family_id": family_id})

    async def successor_used(self, family_id: int, refresh_token_id: int) -> bool:
        r = t.refresh_tokens
        query = (
            select(r.c.id)
            .where(
                r.c.family_id == family_id,
                r.c.id > refresh_token_id,
                r.c.rotated_at.is_not(None),
            )
            .limit(1)
        )
        return (await self.connection.execute(query)).first() is not None

    async def revoke_family(self, family_id: int, now: int, keep: int | None = None) -> None:
        await self.lock_family(family_id)
        for table in (t.access_tokens, t.refresh_tokens):
            condition = and_(table.c.family_id == family_id, table.c.revoked_at.is_(None))
            if keep is not None and table is t.refresh_tokens:
                condition = and_(condition, table.c.id != keep)
            await self.connection.execute(update(table).where(condition).values(revoked_at=now))

    async def revoke_access_token(self, access_token_id: int, now: int) -> None:
        await self.connection.execute(
            update(t.access_tokens)
            .where(t.access_tokens.c.id == access_token_id, t.access_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def revoke_company_tokens(self, application_id: int, company_id: int, now: int) -> None:
        a = t.access_tokens
        if self.connection.dialect.name != "sqlite":
            # Minters of company tokens for one application queue on its row (NO KEY UPDATE
            # does not block the KEY SHARE locks that inserting its tokens takes), so two
            # exchanges at once cannot each revoke only the older tokens and both stay active.
            await self.connection.execute(
                select(t.applications.c.id)
                .where(t.applications.c.id == application_id)
                .with_for_update(key_share=True)
            )
        await self.connection.execute(
            update(a)
            .where(
                a.c.application_id == application_id,
                a.c.company_id == company_id,
                a.c.owner_type == "company",
                a.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )

    async def access_token(self, digest: str) -> AccessToken | None:
        row = await _ACCESS_TOKEN_BY_DIGEST.first(self.connection, {"digest": digest})
        if row is None:
            return None
        return AccessToken(
            id=row.id,
            application_id=row.application_id,
            client_id=row.client_id,
            owner=_owner(row),
            scopes=_scopes(row.scopes),
            created_at=row.created_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            user_active=bool(row.user_active),
            user=User(
                id=row.user_id,
                company_id=row.company_id,
                email=row.user_email,
                name=row.user_name,
                admin=bool(row.user_admin),
                active=bool(row.user_active),
            )
            if row.user_email is not None
            else None,
            company_name=row.company_name,
        )


class Owners:
    """``OwnerStore``."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def user_is_active(self, user_id: int) -> bool:
        row = await _USER_IS_ACTIVE.first(self.connection, {"user_id": user_id})
        return row is not None and bool(row.active)


class Accounts:
    """Companies and the people who sign in."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def create_company(self, name: str, now: int) -> Company:
        row = (
            await self.connection.execute(
                insert(t.companies).values(name=name, created_at=now).returning(t.companies)
            )
        ).one()
        return Company(row.id, row.name)

    async def company(self, company_id: int) -> Company | None:
        row = await _COMPANY_BY_ID.first(self.connection, {"company_id": company_id})
        return Company(row.id, row.name) if row else None

    async def company_by_name(self, name: str) -> Company | None:
        row = (
            await self.connection.execute(
                select(t.companies).where(t.companies.c.name == name).order_by(t.companies.c.id)
            )
        ).first()
        return Company(row.id, row.name) if row else None

    async def create_user(
        self,
        *,
        company_id: int,
        email: str,
        name: str,
        password_hash: str,
        admin: bool,
        now: int,
    ) -> User:
        row = (
            await self.connection.execute(
                insert(t.users)
                .values(
                    company_id=company_id,
                    email=email.strip().lower(),
                    name=name,
                    password_hash=password_hash,
                    admin=admin,
                    active=True,
                    created_at=now,
                )
                .returning(t.users)
            )
        ).one()
        return _user(row)

    async def user(self, user_id: int) -> User | None:
        row = await _USER_BY_ID.first(self.connection, {"user_id": user_id})
        return _user(row) if row else None

    async def user_with_password_hash(self, email: str) -> tuple[User, str] | None:
        row = (
            await self.connection.execute(
                select(t.users).where(t.users.c.email == email.strip().lower())
            )
        ).first()
        return (_user(row), row.password_hash) if row else None

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        await self.connection.execute(
            update(t.users).where(t.users.c.id == user_id).values(password_hash=password_hash)
        )

    async def deactivate(self, user_id: int) -> User | None:
        """A terminated employee: no more sign-in, open sessions end now."""
        await UserSessions(self.connection).end_all(user_id)
        row = (
            await self.connection.execute(
                update(t.users)
                .where(t.users.c.id == user_id)
                .values(active=False)
                .returning(t.users)
            )
        ).first()
        return _user(row) if row else None


class UserSessions:
    """Server-side sign-in sessions, keyed by the digest of the cookie's random id."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def start(self, digest: str, user_id: int, now: int, expires_at: int) -> None:
        await self.connection.execute(
            insert(t.user_sessions).values(
                digest=digest, user_id=user_id, created_at=now, expires_at=expires_at
            )
        )

    async def user(self, digest: str, now: int) -> User | None:
        """The active user of an unexpired session, in one indexed read."""
        row = (
            await self.connection.execute(
                select(t.users)
                .join(t.user_sessions, t.user_sessions.c.user_id == t.users.c.id)
                .where(
                    t.user_sessions.c.digest == digest,
                    t.user_sessions.c.expires_at > now,
                    t.users.c.active.is_(True),
                )
            )
        ).first()
        return _user(row) if row else None

    async def end(self, digest: str) -> None:
        await self.connection.execute(
            delete(t.user_sessions).where(t.user_sessions.c.digest == digest)
        )

    async def end_all(self, user_id: int) -> None:
        await self.connection.execute(
            delete(t.user_sessions).where(t.user_sessions.c.user_id == user_id)
        )


@dataclass(frozen=True, slots=True)
class Consent:
    """What someone allowed an application, as /oauth/authorized_applications lists it."""

    id: int
    application_id: int
    application_name: str
    owner: ResourceOwner
    company_name: str
    user_email: str | None
    scopes: tuple[str, ...]
    created_at: int
    updated_at: int


class Consents:
    """Grants people made, remembered for consent and listed so they can be revoked."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    def _active(self, application_id: int, owner: ResourceOwner) -> Any:
        c = t.consents
        condition = and_(
            c.c.application_id == application_id,
            c.c.owner_type == owner.type,
            c.c.company_id == owner.company_id,
            c.c.revoked_at.is_(None),
        )
        if owner.type == "user":
            condition = and_(condition, c.c.user_id == owner.user_id)
        return condition

    async def record(
        self, application_id: int, owner: ResourceOwner, scopes: Sequence[str], now: int
    ) -> None:
        """Remember a grant; a later grant of the same application widens the remembered
        scopes to the union of both."""
        c = t.consents
        row = (
            await self.connection.execute(
                select(c.c.id, c.c.scopes).where(self._active(application_id, owner))
            )
        ).first()
        if row is None:
            await self.connection.execute(
                insert(c).values(
                    application_id=application_id,
                    owner_type=owner.type,
                    company_id=owner.company_id,
                    user_id=owner.user_id,
                    scopes=" ".join(scopes),
                    created_at=now,
                    updated_at=now,
                )
            )
            return
        merged = list(dict.fromkeys([*row.scopes.split(), *scopes]))
        await self.connection.execute(
            update(c)
            .where(c.c.id == row.id)
            .values(scopes=" ".join(merged), updated_at=now, user_id=owner.user_id)
        )

    async def covers(
        self, application_id: int, user_id: int, company_id: int, scopes: Sequence[str]
    ) -> bool:
        """Did this user already allow this application at least these scopes?"""
        owner = ResourceOwner("user", company_id, user_id)
        remembered = await self.connection.scalar(
            select(t.consents.c.scopes).where(self._active(application_id, owner))
        )
        return remembered is not None and set(scopes) <= set(remembered.split())

    def _listing(self) -> Any:
        c, a, co, u = t.consents, t.applications, t.companies, t.users
        return (
            select(
                c,
                a.c.name.label("application_name"),
                co.c.name.label("company_name"),
                u.c.email.label("user_email"),
            )
            .join(a, a.c.id == c.c.application_id)
            .join(co, co.c.id == c.c.company_id)
            .outerjoin(u, u.c.id == c.c.user_id)
            .where(c.c.revoked_at.is_(None))
            .order_by(c.c.updated_at.desc(), c.c.id.desc())
        )

    @staticmethod
    def _consent(row: Row[Any]) -> Consent:
        return Consent(
            id=row.id,
            application_id=row.application_id,
            application_name=row.application_name,
            owner=_owner(row),
            company_name=row.company_name,
            user_email=row.user_email,
            scopes=_scopes(row.scopes),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    async def of_user(self, user_id: int) -> list[Consent]:
        c = t.consents
        rows = await self.connection.execute(
            self._listing().where(c.c.owner_type == "user", c.c.user_id == user_id)
        )
        return [self._consent(row) for row in rows]

    async def company_grants(self, company_id: int) -> list[Consent]:
        """Company tokens the company's admins gave, to any application."""
        c = t.consents
        rows = await self.connection.execute(
            self._listing().where(c.c.owner_type == "company", c.c.company_id == company_id)
        )
        return [self._consent(row) for row in rows]

    async def company_grants_of_application(self, application_id: int) -> list[Consent]:
        c = t.consents
        rows = await self.connection.execute(
            self._listing().where(c.c.owner_type == "company", c.c.application_id == application_id)
        )
        return [self._consent(row) for row in rows]

    async def get(self, consent_id: int) -> Consent | None:
        row = (
            await self.connection.execute(self._listing().where(t.consents.c.id == consent_id))
        ).first()
        return self._consent(row) if row else None

    async def revoke(self, consent: Consent, now: int) -> None:
        """Withdraw a grant: the consent and every token it produced stop now."""
        await self.connection.execute(
            update(t.consents).where(t.consents.c.id == consent.id).values(revoked_at=now)
        )
        for table in (t.access_tokens, t.refresh_tokens):
            condition = and_(
                table.c.application_id == consent.application_id,
                table.c.owner_type == consent.owner.type,
                table.c.company_id == consent.owner.company_id,
                table.c.revoked_at.is_(None),
            )
            if consent.owner.type == "user":
                condition = and_(condition, table.c.user_id == consent.owner.user_id)
            await self.connection.execute(update(table).where(condition).values(revoked_at=now))
        codes = t.authorization_codes
        code_condition = and_(
            codes.c.application_id == consent.application_id,
            codes.c.owner_type == consent.owner.type,
            codes.c.company_id == consent.owner.company_id,
        )
        if consent.owner.type == "user":
            code_condition = and_(code_condition, codes.c.user_id == consent.owner.user_id)
        await self.connection.execute(delete(codes).where(code_condition))
