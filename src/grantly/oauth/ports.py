"""What the protocol core needs from storage: small async Protocols, one per concern.

Everything is keyed by the digest of the secret, so storage never sees a raw code or token.
A token request reads its client and the credential it presents together (``client_with_*``:
one read), and writes what it decided in one atomic step whose condition is the RFCs'
exactly-once rule: ``redeem`` (a code is used at most once, RFC 6749 §4.1.2) and ``rotate``
(a refresh token is used at most once, RFC 9700 §4.14.2). The new tokens are stored by that
same step, only if it succeeds, so that of many racing requests exactly one gets tokens.
"""

from __future__ import annotations

from typing import Protocol

from .models import (
    AccessToken,
    Application,
    AuthorizationCode,
    NewAuthorizationCode,
    NewTokens,
    ResourceOwner,
    ResourceServer,
)
from .models import RefreshToken as RefreshTokenRecord


class ApplicationStore(Protocol):
    async def by_client_id(self, client_id: str) -> Application | None: ...


class ResourceStore(Protocol):
    async def by_uri(self, uri: str) -> ResourceServer | None:
        """The resource server registered with this (normalized) URI (RFC 8707 §2)."""
        ...


class AuthorizationCodeStore(Protocol):
    async def save(self, code: NewAuthorizationCode) -> None: ...

    async def client_with_code(
        self, client_id: str, digest: str
    ) -> tuple[Application | None, AuthorizationCode | None]:
        """The application of this client_id and the code of this digest (used or not,
        whichever client it was issued to), read together."""
        ...

    async def redeem(self, code_id: int, now: int, tokens: NewTokens | None) -> bool:
        """Mark the code used, if it is still unused, and only then store ``tokens`` (none:
        only burn it), as one atomic step; False when another request used it first."""
        ...


class TokenStore(Protocol):
    async def issue(self, tokens: NewTokens) -> None: ...

    async def client_with_refresh_token(
        self, client_id: str, digest: str
    ) -> tuple[Application | None, RefreshTokenRecord | None]:
        """The application of this client_id and the refresh token of this digest (whichever
        client it was issued to), read together."""
        ...

    async def client_with_access_token(
        self, client_id: str, digest: str
    ) -> tuple[Application | None, AccessToken | None]:
        """The application of this client_id and the access token of this digest, read
        together (introspection)."""
        ...

    async def resource_server_with_access_token(
        self, client_id: str, digest: str
    ) -> tuple[ResourceServer | None, AccessToken | None]:
        """The resource server of this client_id and the access token of this digest, read
        together (a resource server's introspection, RFC 7662)."""
        ...

    async def refresh_token(self, digest: str) -> RefreshTokenRecord | None: ...

    async def rotate(
        self, refresh_token_id: int, family_id: int, now: int, successor: NewTokens
    ) -> bool:
        """Mark a refresh token used, if it is neither used nor revoked, and only then store
        its ``successor`` tokens, as one atomic step taken under the family lock (see
        ``lock_family``); False when another request used it first or it was revoked."""
        ...

    async def lock_family(self, family_id: int) -> None:
        """Until the end of the transaction, make every other request that changes this grant's
        tokens (rotation, family revocation) wait: one lock taken first gives all of them one
        order, so they cannot deadlock, and a revocation sees every token rotated before it."""
        ...

    async def successor_used(self, family_id: int, refresh_token_id: int) -> bool:
        """Whether a refresh token issued in this family after the given one was used."""
        ...

    async def revoke_family(self, family_id: int, now: int, keep: int | None = None) -> None:
        """Revoke every access and refresh token issued from one authorization code (takes
        the family lock first), except the refresh token with id ``keep``."""
        ...

    async def retire_consent(self, application_id: int, owner: ResourceOwner, now: int) -> None:
        """Revoke the owner's consent to the application once nothing of the grant works any
        more (no live token, no unused code), as after a family revocation: a remembered
        consent then asks again, while one still backed by another authorization stands."""
        ...

    async def access_token(self, digest: str) -> AccessToken | None: ...

    async def revoke_access_token(self, access_token_id: int, now: int) -> None: ...

    async def revoke_company_tokens(self, application_id: int, company_id: int, now: int) -> None:
        """Revoke the active company tokens of an application for a company (Factorial keeps
        one active company token per application and company)."""
        ...


class ReplayGuard(Protocol):
    async def first_use(self, key: str, expires_at: int) -> bool:
        """Remember ``key`` until ``expires_at``; True the first time, False for every later
        use while it is remembered, by any process of any host (RFC 9449 §11.1: a DPoP proof's
        jti; RFC 7523 §3: a client assertion's jti)."""
        ...


class Signer(Protocol):
    async def sign(self, header: dict[str, object], claims: dict[str, object]) -> str:
        """A compact JWS of ``claims`` signed with the server's active key, whose ``alg`` and
        ``kid`` join ``header`` (RFC 7515 §7.1)."""
        ...


class ClientKeys(Protocol):
    async def key_set(self, application: Application, refresh: bool = False) -> dict[str, object]:
        """The JWK Set a ``private_key_jwt`` client signs with (RFC 7523 §2.2): its registered
        ``jwks``, or the document at its ``jwks_uri`` (cached; ``refresh`` fetches it again,
        for a key it does not hold yet)."""
        ...


class PushedRequestStore(Protocol):
    async def save(
        self,
        digest: str,
        application_id: int,
        params: dict[str, list[str]],
        now: int,
        expires_at: int,
    ) -> None: ...

    async def find(self, digest: str, now: int) -> tuple[int, dict[str, list[str]]] | None:
        """(application id, parameters) of an unused, unexpired pushed request (RFC 9126)."""
        ...

    async def use(self, digest: str, now: int) -> bool:
        """Mark it used if still unused and unexpired; False when it was not (single use)."""
        ...
