"""Who a resource request acts for, and what that lets it see and change.

Three credentials open the API (Factorial's): a user token acts as one person with that
person's permissions; a company token and an API key act for the company. An API key
(``x-api-key``) decides whenever it is present, even beside a Bearer token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request

from ..oauth.bearer import require_scope
from ..oauth.errors import InvalidRequest, InvalidToken
from ..oauth.models import AccessToken, User
from ..oauth.secrets import digest
from ..services import services
from ..store.unit import Store
from .auth import access_token

CredentialKind = Literal["user_token", "company_token", "api_key"]
API_KEY_HEADER = "x-api-key"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: CredentialKind
    company_id: int
    # The person a user token acts as (None for company tokens and API keys).
    user_id: int | None
    # Whether that person is one of the company's admins.
    admin: bool
    # Factorial's credential id: "<kind of credential>_<id>" (docs/factorial-api.md §3.3).
    credential_id: str
    scopes: tuple[str, ...]
    client_id: str | None = None
    expires_at: int | None = None
    api_key_name: str | None = None
    # The person, as loaded to check they are still active (saves loading them again).
    user: User | None = None
    # The company's name, when it was read with the credential.
    company_name: str | None = None

    @property
    def acts_for_company(self) -> bool:
        """Company tokens, API keys and admins' user tokens see and change everything in
        their company; other user tokens have their person's permissions."""
        return self.kind != "user_token" or self.admin

    def sees_sensitive_fields_of(self, employee_id: int) -> bool:
        """Factorial: fields the person may not see come back null. An employee sees their
        own sensitive fields; only admins (and company credentials) see everyone's."""
        return self.acts_for_company or employee_id == self.user_id

    @property
    def may_write(self) -> bool:
        """Changes are for admins' user tokens, company tokens and API keys only."""
        return self.acts_for_company


async def authenticate(request: Request, uow: Store, scope: str) -> Principal:
    """The request's principal, or an ``OAuthError`` to answer as an RFC 6750 §3 challenge.

    ``scope`` is what the request needs of an OAuth token (RFC 6750 §3.1
    ``insufficient_scope``); an API key has full access, as in Factorial.
    """
    keys = request.headers.getlist(API_KEY_HEADER)
    if len(keys) > 1:
        raise InvalidRequest("send one x-api-key header, not several.")
    if keys:
        key = await uow.api_keys.active_by_digest(digest(keys[0].strip()))
        if key is None:
            raise InvalidToken("the API key is invalid or revoked.")
        return Principal(
            kind="api_key",
            company_id=key.company_id,
            user_id=None,
            admin=False,
            credential_id=f"api_key_{key.id}",
            scopes=services(request).server_scopes,
            api_key_name=key.name,
        )
    token = await access_token(request, uow)
    require_scope(token, scope)
    return of_token(token)


def of_token(token: AccessToken) -> Principal:
    """The principal of a valid OAuth access token (the API's and the MCP endpoint's)."""
    kind: CredentialKind
    user_id: int | None
    user: User | None = None
    if token.owner.type == "company":
        kind, user_id, admin = "company_token", None, False
        credential_id = f"company_token_{token.id}"
    else:
        # Read with the token, in the same statement (Bearer validation checked it is active).
        user = token.user
        if user is None or not user.active:
            raise InvalidToken("the access token is invalid, expired or revoked.")
        kind, user_id, admin = "user_token", user.id, user.admin
        credential_id = f"access_token_{token.id}"
    return Principal(
        kind=kind,
        company_id=token.owner.company_id,
        user_id=user_id,
        admin=admin,
        credential_id=credential_id,
        scopes=token.scopes,
        client_id=token.client_id,
        expires_at=token.expires_at,
        user=user if kind == "user_token" else None,
        company_name=token.company_name,
    )
