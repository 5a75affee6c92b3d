"""Agent applications at the authorization endpoint: a ``client_id`` that is a client metadata
document's URL is fetched (grantly/outbound.py) and kept as an application of no company
(draft-ietf-oauth-client-id-metadata-document §4); and each company's policy for them."""

from __future__ import annotations

import json

from ..oauth import client_documents as documents
from ..oauth.errors import AccessDenied
from ..oauth.models import Application, User
from ..outbound import FetchRefused
from ..services import Services
from ..store.agents import ClientIdTaken
from ..store.unit import Store


class ClientDocumentUnusable(Exception):
    """The client_id names a metadata document Grantly cannot use; the message says why, for
    the person at the authorization endpoint."""


def stale(application: Application, now: int) -> bool:
    """Whether a metadata document's cached copy has expired (§4.3)."""
    expires_at = application.metadata_expires_at
    return application.origin == "metadata_document" and (expires_at is None or expires_at <= now)


async def ensure_document_client(svc: Services, client_id: str, known: Application | None) -> None:
    """Make sure the application a metadata document URL names is known and fresh: fetched
    on its first use, and again once its cache lifetime (the document's Cache-Control, within
    bounds) has passed (§4.3). The fetch runs outside any unit of work: no transaction waits on
    another server."""
    try:
        documents.check_url(client_id)
    except documents.InvalidClientDocument as exc:
        raise ClientDocumentUnusable(str(exc)) from None
    now = svc.clock.now()
    if known is not None:
        if known.origin != "metadata_document":
            raise ClientDocumentUnusable("this client_id is not a client metadata document.")
        if not stale(known, now):
            return
    try:
        fetched = await svc.fetcher.fetch(client_id)
        document = documents.parse(client_id, fetched.document)
    except FetchRefused as exc:
        raise ClientDocumentUnusable(
            f"Grantly could not use the client's metadata document: {exc}."
        ) from None
    except documents.InvalidClientDocument as exc:
        raise ClientDocumentUnusable(
            f"The client's metadata document is not usable: {exc}"
        ) from None
    metadata = {
        "client_id": document.client_id,
        "client_name": document.client_name,
        "redirect_uris": list(document.redirect_uris),
        "token_endpoint_auth_method": "none",
        **({"client_uri": document.client_uri} if document.client_uri else {}),
        **({"logo_uri": document.logo_uri} if document.logo_uri else {}),
    }
    async with svc.db.unit() as uow:
        try:
            await uow.agents.save_document(
                client_id=client_id,
                name=document.client_name,
                redirect_uris=document.redirect_uris,
                scopes=svc.server_scopes,
                client_metadata=json.dumps(metadata),
                now=now,
                expires_at=now + fetched.max_age,
            )
        except ClientIdTaken:
            raise ClientDocumentUnusable(
                "this client_id is not a client metadata document."
            ) from None


async def refusal(uow: Store, application: Application, user: User) -> AccessDenied | None:
    """Why the person's company does not let them authorize this agent application, or None
    (a dashboard application is the concern of the company that registered it)."""
    if not application.agent:
        return None
    if await uow.agents.policy(user.company_id) == "block":
        return AccessDenied(
            "your company does not allow applications it did not register (agent "
            "applications); ask an admin of your company."
        )
    if await uow.agents.blocked(user.company_id, application.id):
        return AccessDenied("an admin of your company blocked this application.")
    return None
