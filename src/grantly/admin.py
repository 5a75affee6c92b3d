"""Operations of the company's admins, shared by the dashboard and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from .oauth.models import Application
from .oauth.registration import ApplicationDraft
from .oauth.secrets import CLIENT_SECRET_PREFIX, digest, new_client_id, new_secret
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
    return found


def revoking_changes(application: Application, draft: ApplicationDraft) -> list[str]:
    """What of a change revokes every grant of the application (``update_application``)."""
    found = []
    if draft.confidential != application.confidential:
        found.append("client type")
    if set(draft.scopes) != set(application.scopes):
        found.append("scopes")
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
    )
    return UpdatedApplication(updated, secret, tuple(changes(application, draft)), revoked)


async def regenerate_secret(uow: Store, application: Application, now: int) -> str:
    secret = new_secret(CLIENT_SECRET_PREFIX)
    await uow.applications.set_secret_digest(application.id, digest(secret), now)
    return secret
