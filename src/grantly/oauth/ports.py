"""What the protocol core needs from storage: small async Protocols, one per concern.

Everything is keyed by the digest of the secret, so storage never sees a raw code or token.
The operations the RFCs need exactly-once for are single atomic calls: ``consume`` (a code is
redeemed at most once, RFC 6749 §4.1.2) and ``rotate`` (a refresh token is used at most once,
RFC 9700 §4.14.2).
"""

from __future__ import annotations

from typing import Protocol

from .models import AccessToken, Application, AuthorizationCode, NewAuthorizationCode, NewTokens
from .models import RefreshToken as RefreshTokenRecord


class ApplicationStore(Protocol):
    async def by_client_id(self, client_id: str) -> Application | None: ...


class AuthorizationCodeStore(Protocol):
    async def save(self, code: NewAuthorizationCode) -> None: ...

    async def consume(self, digest: str, application_id: int, now: int) -> AuthorizationCode | None:
        """Mark the code used and return it; None when it is unknown, already used, or was
        issued to another application (which then cannot burn it)."""
        ...

    async def find(self, digest: str) -> AuthorizationCode | None:
        """The code, used or not (to recognise a replay)."""
        ...


class TokenStore(Protocol):
    async def issue(self, tokens: NewTokens) -> None: ...

    async def refresh_token(self, digest: str) -> RefreshTokenRecord | None: ...

    async def rotate(self, refresh_token_id: int, now: int) -> bool:
        """Mark a refresh token as used; False when another request already did."""
        ...

    async def lock_family(self, family_id: int) -> None:
        """Until the end of the transaction, make every other request that changes this grant's
        tokens (rotation, family revocation) wait: one lock taken first gives all of them one
        order, so they cannot deadlock."""
        ...

    async def successor_used(self, family_id: int, refresh_token_id: int) -> bool:
        """Whether a refresh token issued in this family after the given one was used."""
        ...

    async def revoke_family(self, family_id: int, now: int, keep: int | None = None) -> None:
        """Revoke every access and refresh token issued from one authorization code (takes
        the family lock first), except the refresh token with id ``keep``."""
        ...

    async def access_token(self, digest: str) -> AccessToken | None: ...

    async def revoke_access_token(self, access_token_id: int, now: int) -> None: ...

    async def revoke_company_tokens(self, application_id: int, company_id: int, now: int) -> None:
        """Revoke the active company tokens of an application for a company (Factorial keeps
        one active company token per application and company)."""
        ...
