"""Operations of the company's admins, shared by the dashboard and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from .oauth.models import Application, User
from .oauth.registration import ApplicationDraft
from .oauth.secrets import (
    CLIENT_SECRET_PREFIX,
    INVITATION_PREFIX,
    digest,
    new_client_id,
    new_secret,
)
from .store import live
from .store.live import LiveTokens
from .store.unit import Store


@dataclass(frozen=True)
class CreatedApplication:
    application: Application
    client_secret: str | None  # shown once; only its digest is stored

    def as_json(self) -> dict[str, object]:
        app = self.application
        return {
            "id": app.id,
            "client_id": app.client_id,
            "client_secret": self.client_secret,
            "name": app.name,
            "redirect_uris": list(app.redirect_uris),
            "confidential": app.confidential,
            "scopes": list(app.scopes),
            "consent": app.consent,
            "access_token_lifetime": app.access_token_lifetime,
            **security_json(app),
        }


async def create_application(
    uow: Store, company_id: int, draft: ApplicationDraft, now: int
) -> CreatedApplication:
    secret = new_secret(CLIENT_SECRET_PREFIX) if draft.confidential else None
    application = await uow.applications.create(
        company_id=company_id,
        name=draft.name,
        client_id=new_client_id(),
        secret_digest=digest(secret) if secret else None,
        confidential=draft.confidential,
        redirect_uris=draft.redirect_uris,
        scopes=draft.scopes,
        now=now,
        consent=draft.consent,
        access_token_lifetime=draft.access_token_lifetime,
        security=draft.security,
    )
    return CreatedApplication(application, secret)


@dataclass(frozen=True)
class UpdatedApplication(CreatedApplication):
    changed: tuple[str, ...] = ()  # ``changes``
    revoked: LiveTokens | None = None  # what stopped working, when the change revoked


def changes(application: Application, draft: ApplicationDraft) -> list[str]:
    """What a draft changes of an application, named as a person reads it."""
    found = []
    if draft.name != application.name:
        found.append("name")
    if draft.redirect_uris != application.redirect_uris:
        found.append("redirect URIs")
    if draft.confidential != application.confidential:
        found.append("client type")
    if draft.scopes != application.scopes:
        found.append("scopes")
    if draft.consent != application.consent:
        found.append("consent")
    if draft.access_token_lifetime != application.access_token_lifetime:
        found.append("access-token lifetime")
    security = draft.security
    for label, now, before in (
        ("access-token format", security.access_token_format, application.access_token_format),
        ("DPoP", security.dpop, application.dpop),
        ("client authentication", security.auth_method, application.auth_method),
        (
            "client keys",
            (security.jwks, security.jwks_uri),
            (application.jwks, application.jwks_uri),
        ),
        ("pushed requests", security.require_par, application.require_par),
        ("grant types", security.grant_types, application.grant_types),
    ):
        if now != before:
            found.append(label)
    return found


def security_json(app: Application) -> dict[str, object]:
    """How an application's tokens and the application prove themselves (JSON of the CLI)."""
    return {
        "access_token_format": app.access_token_format,
        "dpop": app.dpop,
        "token_endpoint_auth_method": app.auth_method
        or ("client_secret_basic" if app.confidential else "none"),
        "jwks_uri": app.jwks_uri,
        "jwks": app.jwks is not None,
        "require_par": app.require_par,
        "grant_types": list(app.grant_types),
    }


def revoking_changes(application: Application, draft: ApplicationDraft) -> list[str]:
    """What of a change revokes every grant of the application (``update_application``)."""
    found = []
    if draft.confidential != application.confidential:
        found.append("client type")
    if set(draft.scopes) != set(application.scopes):
        found.append("scopes")
    if draft.security.dpop == "required" and application.dpop != "required":
        # RFC 9449: "required" means no bearer token works for it, the ones issued before too.
        found.append("DPoP requirement")
    return found


async def update_application(
    uow: Store, application: Application, draft: ApplicationDraft, now: int
) -> UpdatedApplication:
    """Change an application. Turning a public application confidential creates its secret
    (returned, to show once); turning it public drops the secret.

    Changing the scopes or the client type (``revoking_changes``) invalidates every token and
    unused code of the application (Factorial's rule; also RFC 6749 §6: a refresh must not
    yield scopes the client no longer has, and tokens issued to an authenticated client must
    not become redeemable without its secret). Users authorize again."""
    secret: str | None = None
    secret_digest = application.secret_digest
    if draft.confidential and secret_digest is None:
        secret = new_secret(CLIENT_SECRET_PREFIX)
        secret_digest = digest(secret)
    elif not draft.confidential:
        secret_digest = None
    applications = uow.applications
    revoked = (
        await applications.revoke_all(application.id, now)
        if revoking_changes(application, draft)
        else None
    )
    updated = await applications.update(
        application,
        name=draft.name,
        confidential=draft.confidential,
        secret_digest=secret_digest,
        redirect_uris=draft.redirect_uris,
        scopes=draft.scopes,
        now=now,
        consent=draft.consent,
        access_token_lifetime=draft.access_token_lifetime,
        security=draft.security,
    )
    return UpdatedApplication(updated, secret, tuple(changes(application, draft)), revoked)


async def regenerate_secret(uow: Store, application: Application, now: int) -> str:
    secret = new_secret(CLIENT_SECRET_PREFIX)
    await uow.applications.set_secret_digest(application.id, digest(secret), now)
    return secret


# --- people -----------------------------------------------------------------------------------

INVITATION_LIFETIME = 7 * 86400  # seconds a link to set a password works


def email_problem(email: str) -> str | None:
    """What is wrong with a sign-in email (already stripped and lowercased), or None."""
    if "@" not in email or len(email) > 320 or any(c.isspace() for c in email):
        return f"'{email}' is not an email address."
    return None


def name_problem(name: str) -> str | None:
    if not name.strip() or len(name.strip()) > 200:
        return "the name must be 1 to 200 characters."
    return None


async def create_person(
    uow: Store,
    *,
    company_id: int,
    email: str,
    name: str,
    admin: bool,
    now: int,
    password_hash: str | None = None,
) -> User:
    """A new person of the company. Without ``password_hash`` they have no password: invite
    them (``invite``) to set one. A taken email raises the store's ``Conflict``."""
    return await uow.accounts.create_user(
        company_id=company_id,
        email=email,
        name=name.strip() or email.split("@")[0],
        password_hash=password_hash,
        admin=admin,
        now=now,
    )


@dataclass(frozen=True)
class Invited:
    """An invitation just made: its link is shown once; only the token's digest is kept."""

    id: int
    user: User
    token: str
    expires_at: int
    replaced: bool  # an earlier link of theirs, still usable, stopped working

    def link(self, issuer: str) -> str:
        # In the query, not the path: access logs print paths, never query strings.
        return f"{issuer}/set-password?{urlencode({'token': self.token})}"


async def invite(uow: Store, user: User, created_by: int | None, now: int) -> Invited:
    """A one-time link for ``user`` to set their password, valid ``INVITATION_LIFETIME``; their
    earlier unused links stop working. Only for active people: a deactivated person's link
    would be refused anyway."""
    if not user.active:
        raise ValueError("a deactivated person cannot be invited")
    token = new_secret(INVITATION_PREFIX)
    expires_at = now + INVITATION_LIFETIME
    invitation_id, replaced = await uow.invitations.issue(
        user_id=user.id,
        digest=digest(token),
        created_by=created_by,
        now=now,
        expires_at=expires_at,
    )
    return Invited(invitation_id, user, token, expires_at, replaced > 0)


@dataclass(frozen=True)
class Access:
    """What a person's deactivation ends: the browsers they are signed in on, the applications
    they authorized to act as them (and those grants' tokens), their pending invitation. The
    company tokens they authorized act for the company and keep working."""

    sessions: int
    applications: int
    tokens: int
    invitation_pending: bool
    company_grants: int

    def consequences(self, name: str) -> list[str]:
        """Each of these, in a sentence, for the confirm step and the notice after it."""
        lines = [f"{name} can no longer sign in."]
        if self.sessions:
            verb = "ends" if self.sessions == 1 else "end"
            lines.append(f"{_count(self.sessions, 'sign-in session')} {verb} at once.")
        if self.tokens:
            verb = "stops" if self.tokens == 1 else "stop"
            of = f", of {_count(self.applications, 'application')} they authorized"
            lines.append(
                f"{_count(self.tokens, 'live token')} acting as them (access and refresh "
                f"tokens{of if self.applications else ''}) {verb} working at once."
            )
        else:
            lines.append("No token acting as them works now: no application loses access.")
        if self.invitation_pending:
            lines.append("Their pending invitation link stops working.")
        if self.company_grants:
            verb = "keeps" if self.company_grants == 1 else "keep"
            lines.append(
                f"{_count(self.company_grants, 'application')} they authorized to act for the "
                f"company {verb} working."
            )
        return lines


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


async def access_of(uow: Store, user: User, now: int) -> Access:
    return Access(
        sessions=await uow.sessions.count_live(user.id, now),
        applications=len(await uow.consents.of_user(user.id, now)),
        tokens=live.total(
            (await uow.tokens.live_by_grant(now, owner_type="user", user_id=user.id)).values()
        ).tokens,
        invitation_pending=await uow.invitations.pending_for(user.id, now) is not None,
        company_grants=len(await uow.consents.authorized_by(user.id, now)),
    )


async def deactivate(uow: Store, user: User, now: int) -> tuple[User, Access] | None:
    """A terminated employee: no more sign-in, their sessions end, their user tokens stop
    working at once (and stay revoked if they come back: ``activate``), their pending
    invitation ends. None when they were deactivated already."""
    if not user.active:
        return None
    access = await access_of(uow, user, now)
    deactivated = await uow.accounts.deactivate(user.id, now)
    assert deactivated is not None
    await uow.invitations.revoke_pending(user.id, now)
    return deactivated[0], access


async def activate(uow: Store, user: User, now: int) -> User | None:
    """Let a deactivated person sign in again; their tokens from before stay revoked. None
    when they were active already."""
    if user.active:
        return None
    return await uow.accounts.activate(user.id, now)
