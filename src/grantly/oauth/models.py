"""The plain values the protocol core works with. Storage maps its rows to these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OwnerType = Literal["user", "company"]
OWNER_TYPES: tuple[OwnerType, ...] = ("user", "company")
ConsentMode = Literal["always", "remember", "trusted"]
CONSENT_MODES: tuple[ConsentMode, ...] = ("always", "remember", "trusted")
# Where an application came from: a company's admin registered it on the dashboard (or the
# operator with the CLI), it registered itself (RFC 7591), or its client_id is the URL of its
# client metadata document (draft-ietf-oauth-client-id-metadata-document). The last two are
# "agent applications": they belong to no company.
ApplicationOrigin = Literal["dashboard", "registration", "metadata_document"]
AgentPolicy = Literal["allow", "block"]
# The form of an application's access tokens: opaque strings, or RFC 9068 JWTs.
TokenFormat = Literal["opaque", "jwt"]
TOKEN_FORMATS: tuple[TokenFormat, ...] = ("opaque", "jwt")
# RFC 9449: "optional" binds a token to the key of the client's DPoP proof when it sends one;
# "required" refuses every token request without a proof, so no bearer token is ever issued.
DpopMode = Literal["optional", "required"]
DPOP_MODES: tuple[DpopMode, ...] = ("optional", "required")
# RFC 6749 §4.1, §6 always; §4.4 (client credentials) only when the application's admins opt
# in.
DEFAULT_GRANT_TYPES: tuple[str, ...] = ("authorization_code", "refresh_token")
GRANT_TYPES: tuple[str, ...] = (*DEFAULT_GRANT_TYPES, "client_credentials")
AGENT_POLICIES: tuple[AgentPolicy, ...] = ("allow", "block")

# A grant's audience (RFC 8707): the protected resources its access tokens may be used at. Each
# entry is either a path relative to the issuer, for Grantly's own resources ("/api"), so that
# tokens stay right when the issuer changes, or the absolute URI of a registered resource server.
Audience = tuple[str, ...]
API = "/api"
MCP = "/mcp"  # Grantly's API as an MCP server (grantly/mcp/), when it is on
# No resource indicator anywhere: Grantly's own API, as before resource indicators existed.
DEFAULT_AUDIENCE: Audience = (API,)


@dataclass(frozen=True, slots=True)
class ClientSecurity:
    """How an application's tokens prove themselves and how it proves itself: the form of its
    access tokens (RFC 9068), DPoP (RFC 9449), its client authentication (RFC 7523 §2.2),
    pushed requests (RFC 9126 §6) and its grant types (RFC 6749 §4.4)."""

    access_token_format: TokenFormat = "opaque"
    dpop: DpopMode = "optional"
    auth_method: str | None = None  # None: the client secret, or nothing when public
    jwks: str | None = None
    jwks_uri: str | None = None
    require_par: bool = False
    grant_types: tuple[str, ...] = DEFAULT_GRANT_TYPES


@dataclass(frozen=True, slots=True)
class Application:
    """An OAuth client (RFC 6749 §2): registered by a company's admin, or an agent application
    of no company (``company_id`` None) that registered itself or publishes its metadata."""

    id: int
    company_id: int | None
    name: str
    client_id: str
    secret_digest: str | None
    confidential: bool
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    consent: ConsentMode = "always"
    access_token_lifetime: int | None = None  # None: the server's default
    origin: ApplicationOrigin = "dashboard"
    # RFC 7592: the digest of the registration access token (self-registered clients only).
    registration_digest: str | None = None
    # The metadata it registered or published (JSON text), as it gave it.
    client_metadata: str | None = None
    # A client metadata document is fetched again from this time on.
    metadata_expires_at: int | None = None
    authorized_at: int | None = None
    access_token_format: TokenFormat = "opaque"
    dpop: DpopMode = "optional"
    # None: the client secret (confidential) or none (public); or "private_key_jwt" (RFC 7523
    # §2.2) with the client's JWK Set given (``jwks``, JSON text) or at ``jwks_uri``.
    auth_method: str | None = None
    jwks: str | None = None
    jwks_uri: str | None = None
    require_par: bool = False
    grant_types: tuple[str, ...] = DEFAULT_GRANT_TYPES

    @property
    def public(self) -> bool:
        return not self.confidential

    @property
    def agent(self) -> bool:
        """Whether it belongs to no company: it registered itself or is named by its metadata
        document."""
        return self.origin != "dashboard"


@dataclass(frozen=True, slots=True)
class User:
    """A person who signs in: an employee of one company, maybe one of its admins."""

    id: int
    company_id: int
    email: str
    name: str
    admin: bool
    active: bool


@dataclass(frozen=True, slots=True)
class ResourceOwner:
    """Whose data a grant opens (Doorkeeper's polymorphic owner, as Factorial uses it).

    A user token acts as ``user_id`` with that user's permissions; a company token acts for
    ``company_id`` whoever authorized it, and never expires.
    """

    type: OwnerType
    company_id: int
    user_id: int | None

    @classmethod
    def for_user(cls, user: User) -> ResourceOwner:
        return cls("user", user.company_id, user.id)

    @classmethod
    def for_company(cls, company_id: int, authorized_by: int | None = None) -> ResourceOwner:
        return cls("company", company_id, authorized_by)

    @property
    def subject(self) -> str:
        return f"{self.type}:{self.user_id if self.type == 'user' else self.company_id}"


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    """A stored authorization code (RFC 6749 §4.1.2), bound to everything it was issued for."""

    id: int
    application_id: int
    owner: ResourceOwner
    redirect_uri: str
    redirect_uri_in_request: bool
    scopes: tuple[str, ...]
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: int
    consumed_at: int | None
    # Whether the person who authorized it is an active employee (read with the record): a
    # user grant needs them to be; a company grant does not depend on them.
    owner_active: bool
    # RFC 8707 §2.1: the resources the authorization request named apply to the whole grant.
    audience: Audience = DEFAULT_AUDIENCE


@dataclass(frozen=True, slots=True)
class NewAuthorizationCode:
    digest: str
    application_id: int
    owner: ResourceOwner
    redirect_uri: str
    redirect_uri_in_request: bool
    scopes: tuple[str, ...]
    code_challenge: str | None
    code_challenge_method: str | None
    created_at: int
    expires_at: int
    audience: Audience = DEFAULT_AUDIENCE


@dataclass(frozen=True, slots=True)
class RefreshToken:
    id: int
    application_id: int
    owner: ResourceOwner
    scopes: tuple[str, ...]
    family_id: int
    expires_at: int
    revoked_at: int | None
    rotated_at: int | None
    # Whether the person who authorized the grant is an active employee (read with the record).
    owner_active: bool
    # The whole grant's audience, whatever a token request narrowed its access tokens to
    # (RFC 8707 §2.2: the refresh token "is bound to the full original grant").
    audience: Audience = DEFAULT_AUDIENCE
    # RFC 9449 §5: a public client's refresh token is bound to its DPoP key.
    jkt: str | None = None


@dataclass(frozen=True, slots=True)
class NewTokens:
    """What one issuance writes: an access token and, for user tokens, a refresh token.

    ``family_id`` is the id of the authorization code the chain of tokens came from (the
    "authorization grant" of RFC 7009 §2.1), so that a replayed code or refresh token, or the
    revocation of a refresh token, can revoke all of them (RFC 6749 §4.1.2, RFC 9700 §4.14.2).
    """

    application_id: int
    owner: ResourceOwner
    scopes: tuple[str, ...]
    created_at: int
    access_digest: str
    access_expires_at: int | None
    refresh_digest: str | None
    refresh_expires_at: int | None
    family_id: int
    # RFC 6749 §6: a refresh may narrow the new access token's scope, but the new refresh
    # token keeps the scope of the one presented, so the client can widen again later.
    refresh_scopes: tuple[str, ...]
    # RFC 8707 §2.2, alike: the access token's audience may be a subset of the grant's; the
    # refresh token keeps the grant's (``refresh_audience``).
    audience: Audience = DEFAULT_AUDIENCE
    refresh_audience: Audience = DEFAULT_AUDIENCE
    # RFC 9449 §6, §5: the DPoP key the access token (and a public client's refresh token) is
    # bound to.
    jkt: str | None = None
    refresh_jkt: str | None = None


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A stored access token, as Bearer validation and introspection see it."""

    id: int
    application_id: int
    client_id: str
    owner: ResourceOwner
    scopes: tuple[str, ...]
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    user_active: bool
    # The person a user token acts as, and the owning company's name, read with the token: a
    # resource request needs them, and one statement sees them in one state.
    user: User | None = None
    company_name: str | None = None
    # The resources it may be used at (RFC 8707 §2): a resource refuses a token whose audience
    # does not name it.
    audience: Audience = DEFAULT_AUDIENCE
    # RFC 9449 §6: the thumbprint of the DPoP key it is bound to; None for a bearer token.
    jkt: str | None = None

    def is_active(self, now: int) -> bool:
        """RFC 6750 §3.1 / RFC 7662 §2.2: not revoked, not expired, owner still entitled."""
        if self.revoked_at is not None:
            return False
        if self.expires_at is not None and now >= self.expires_at:
            return False
        # A user token acts as the user: a terminated (or removed) employee's tokens stop at
        # once. A company token does not depend on who authorized it.
        if self.owner.type == "user":
            return self.owner.user_id is not None and self.user_active
        return True


@dataclass(frozen=True, slots=True)
class ResourceServer:
    """A protected resource other than Grantly's own, registered by the operator: a grant names
    it by ``uri`` (RFC 8707 §2), and it introspects the tokens issued for it with its own
    ``client_id`` and secret (RFC 7662 §2.1), kept only as a digest. ``scopes`` are the
    server's scopes it declares it understands; none declared, it takes any."""

    id: int
    uri: str
    name: str
    scopes: tuple[str, ...]
    client_id: str
    secret_digest: str
    created_at: int


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """The body of a successful token response (RFC 6749 §5.1), as Factorial shapes it."""

    access_token: str
    scopes: tuple[str, ...]
    created_at: int
    expires_in: int | None
    refresh_token: str | None
    # For the audit trail, not the body.
    application_id: int = 0
    owner: ResourceOwner | None = None
    # A refresh retried within the grace period (RFC 9700 §4.14.2), noted in the audit trail.
    grace_retry: bool = False
    # RFC 9449 §5: "DPoP" when the access token is bound to the client's key.
    token_type: str = "Bearer"
    grant_type: str = "authorization_code"

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"access_token": self.access_token, "token_type": self.token_type}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        body["scope"] = " ".join(self.scopes)
        body["created_at"] = self.created_at
        return body
