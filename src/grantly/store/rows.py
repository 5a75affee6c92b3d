"""Rows to the protocol core's values: one builder per record, shared by the repositories."""

from __future__ import annotations

from typing import Any

from ..oauth.models import (
    DEFAULT_AUDIENCE,
    DEFAULT_GRANT_TYPES,
    Application,
    Audience,
    ResourceOwner,
    ResourceServer,
    User,
)


def owner(row: Any) -> ResourceOwner:
    return ResourceOwner(row.owner_type, row.company_id, row.user_id)


def scopes(value: str) -> tuple[str, ...]:
    return tuple(value.split())


def audience(value: str | None) -> Audience:
    """An ``audience`` column (``tables._audience_column``): NULL is the default audience."""
    return DEFAULT_AUDIENCE if value is None else tuple(value.split())


def audience_value(audience: Audience) -> str | None:
    """What an ``audience`` column keeps: NULL for the default, so that a grant naming no
    resource writes the same row it wrote before resource indicators."""
    return None if audience == DEFAULT_AUDIENCE else " ".join(audience)


def resource_server(row: Any) -> ResourceServer:
    return ResourceServer(
        id=row.id,
        uri=row.uri,
        name=row.name,
        scopes=scopes(row.scopes),
        client_id=row.client_id,
        secret_digest=row.secret_digest,
        created_at=row.created_at,
    )


def application(row: Any) -> Application:
    return Application(
        id=row.id,
        company_id=row.company_id,
        name=row.name,
        client_id=row.client_id,
        secret_digest=row.secret_digest,
        confidential=bool(row.confidential),
        redirect_uris=tuple(row.redirect_uris.splitlines()),
        scopes=scopes(row.scopes),
        consent=row.consent,
        access_token_lifetime=row.access_token_lifetime,
        origin=row.origin,
        registration_digest=row.registration_digest,
        client_metadata=row.client_metadata,
        metadata_expires_at=row.metadata_expires_at,
        authorized_at=row.authorized_at,
        access_token_format=row.access_token_format,
        dpop=row.dpop,
        auth_method=row.token_endpoint_auth_method,
        jwks=row.jwks,
        jwks_uri=row.jwks_uri,
        require_par=bool(row.require_par),
        grant_types=scopes(row.grant_types) if row.grant_types else DEFAULT_GRANT_TYPES,
    )


def user(row: Any) -> User:
    return User(
        id=row.id,
        company_id=row.company_id,
        email=row.email,
        name=row.name,
        admin=bool(row.admin),
        active=bool(row.active),
    )
