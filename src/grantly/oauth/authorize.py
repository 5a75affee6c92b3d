"""The authorization endpoint (RFC 6749 §4.1.1 and §4.1.2).

``validate`` checks a request in the order RFC 6749 §4.1.2.1 implies: until the client and its
redirect URI are known to be genuine, errors are shown to the person and never redirected (an
attacker must not be able to use Grantly as an open redirector); after that, errors go back to
the client's redirect URI with ``error``, ``error_description``, ``state`` and ``iss`` (an
unknown or malformed ``resource`` among them: ``invalid_target``, RFC 8707 §2.1).
``issue_code`` then mints the code once the resource owner has allowed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import pkce, resources, scopes
from .clock import Clock
from .errors import (
    AccessDenied,
    InvalidRequest,
    OAuthError,
    UnauthorizedClient,
    UnsupportedResponseType,
    shown,
)
from .models import (
    DEFAULT_AUDIENCE,
    OWNER_TYPES,
    Application,
    Audience,
    NewAuthorizationCode,
    OwnerType,
    ResourceOwner,
    User,
)
from .params import ParamReader, Params
from .ports import ApplicationStore, AuthorizationCodeStore, ResourceStore
from .redirect_uris import OUT_OF_BAND, matches, with_params
from .resources import OwnResources
from .secrets import AUTHORIZATION_CODE_PREFIX, digest, new_secret


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A validated authorization request: everything the consent page and the code need."""

    application: Application
    redirect_uri: str
    redirect_uri_in_request: bool
    scopes: tuple[str, ...]
    state: str | None
    owner_type: OwnerType
    code_challenge: str | None
    code_challenge_method: str | None
    # RFC 8707 §2.1: the resources the grant is for, and the URIs the request named them by
    # (none: the default audience, Grantly's own API).
    audience: Audience = DEFAULT_AUDIENCE
    resource_uris: tuple[str, ...] = ()

    @property
    def out_of_band(self) -> bool:
        return self.redirect_uri == OUT_OF_BAND

    def query(self) -> list[tuple[str, str]]:
        """The request's parameters, to carry it through sign-in and the consent form; a
        repeated one (``resource``) once per value."""
        params = {
            "client_id": self.application.client_id,
            "response_type": "code",
            "scope": scopes.to_string(self.scopes),
            "resource_owner_type": self.owner_type,
        }
        if self.redirect_uri_in_request:
            params["redirect_uri"] = self.redirect_uri
        if self.state is not None:
            params["state"] = self.state
        if self.code_challenge is not None:
            params["code_challenge"] = self.code_challenge
            params["code_challenge_method"] = self.code_challenge_method or "plain"
        return [*params.items(), *(("resource", uri) for uri in self.resource_uris)]


@dataclass(frozen=True, slots=True)
class AuthorizationPolicy:
    server_scopes: tuple[str, ...]
    allow_plain_pkce: bool = False
    max_parameter_length: int = 2048
    resources: OwnResources = field(default_factory=OwnResources)


def _response_type_error(response_type: str | None) -> OAuthError | None:
    if response_type is None:
        return InvalidRequest("the 'response_type' parameter is missing; use response_type=code.")
    if response_type == "code":
        return None
    if response_type.startswith("code="):
        # Factorial's guide once printed `&response_type=code=read,write`: a typo for
        # `&response_type=code&scope=read,write`. Say so rather than a bare error.
        suggested = response_type[len("code=") :]
        return InvalidRequest(
            f"response_type must be 'code', but it is '{shown(response_type)}'. It looks like the "
            f"scopes were glued to it: use response_type=code&scope={shown(suggested)}."
        )
    return UnsupportedResponseType(
        f"response_type '{shown(response_type)}' is not supported; this server issues codes only "
        "(response_type=code)."
    )


async def validate(
    params: Params,
    applications: ApplicationStore,
    policy: AuthorizationPolicy,
    servers: ResourceStore,
    *,
    pushed: bool = False,
) -> AuthorizationRequest:
    """Validate an authorization request (RFC 6749 §4.1.1, RFC 8707 §2.1) or raise an
    ``OAuthError``; ``servers`` are the registered resource servers ``resource`` may name.
    ``pushed``: the parameters came from a pushed request (RFC 9126), or from Grantly's own
    consent form, which only a request that reached the authorization endpoint renders; an
    application that requires pushed requests (§6) refuses any other.

    An error raised before the redirect URI is trusted has ``redirectable=False``.
    """
    reader = ParamReader(params, policy.max_parameter_length)
    client_id = reader.get("client_id")
    if client_id is None:
        raise InvalidRequest("the 'client_id' parameter is missing.")
    application = await applications.by_client_id(client_id)
    if application is None:
        raise OAuthError(
            "no application has this client_id; check it on the application's page.",
            error="invalid_client",
            status=400,
        )

    requested_uri = reader.get("redirect_uri")
    if requested_uri is None:
        # RFC 6749 §3.1.2.3: may be omitted only when a single URI is registered.
        if len(application.redirect_uris) != 1:
            raise InvalidRequest(
                "the 'redirect_uri' parameter is missing, and the application registers "
                f"{len(application.redirect_uris)} redirect URIs: say which one to use."
            )
        redirect_uri = application.redirect_uris[0]
    else:
        native = application.public
        if not any(matches(requested_uri, uri, native=native) for uri in application.redirect_uris):
            raise InvalidRequest(
                "the redirect_uri does not match any redirect URI registered for this "
                "application (it must be identical, character for character)."
            )
        redirect_uri = requested_uri

    # From here on the redirect URI is trusted: errors go back to the client.
    state: str | None = None
    try:
        state = reader.get("state")
        if application.require_par and not pushed:
            raise InvalidRequest(
                "this application must push its authorization requests: POST them to the "
                "pushed_authorization_request_endpoint first (RFC 9126 section 6)."
            )
        error = _response_type_error(reader.get("response_type"))
        if error is not None:
            raise error
        targets = await resources.requested(reader, policy.resources, servers)
        requested_scopes = scopes.parse(reader.get("scope"))
        granted = scopes.resolve_requested(
            requested_scopes, application.scopes, policy.server_scopes
        )
        granted = resources.scopes_for(targets, requested_scopes, granted)
        owner_type = reader.get("resource_owner_type") or "user"
        if owner_type not in OWNER_TYPES:
            raise InvalidRequest(
                f"resource_owner_type must be 'user' or 'company', not '{shown(owner_type)}'."
            )
        if owner_type == "company" and application.agent:
            # A company token is the company's, for an application the company vouches for.
            raise UnauthorizedClient(
                "company tokens are issued only to applications a company registered on its "
                "dashboard; this application registered itself. Ask for a user token."
            )
        if owner_type == "company" and application.public:
            # A token for the whole company that never expires must not live in a browser or
            # on a device: only a confidential (server) application may hold one.
            raise UnauthorizedClient(
                "company tokens are issued to confidential applications only; this "
                "application is public."
            )
        challenge = pkce.validate_challenge(
            reader.get("code_challenge"),
            reader.get("code_challenge_method"),
            allow_plain=policy.allow_plain_pkce,
        )
        if challenge is None and application.public:
            raise InvalidRequest(
                "this is a public application: it must use PKCE (code_challenge with "
                "code_challenge_method=S256; RFC 7636, RFC 9700 §2.1.1)."
            )
    except OAuthError as exc:
        raise exc.as_redirectable(redirect_uri, state) from None
    return AuthorizationRequest(
        application=application,
        redirect_uri=redirect_uri,
        redirect_uri_in_request=requested_uri is not None,
        scopes=granted,
        state=state,
        owner_type=owner_type,
        code_challenge=challenge[0] if challenge else None,
        code_challenge_method=challenge[1] if challenge else None,
        audience=tuple(target.entry for target in targets),
        resource_uris=tuple(target.uri for target in targets if target.uri),
    )


def consent_required(request: AuthorizationRequest, user: User, remembered: bool) -> bool:
    """Whether to ask the person (RFC 6749 §4.1.1 leaves it to the server; RFC 9700 §4.13 asks
    for care with automatic approval).

    Company tokens always ask an admin. User tokens skip the question only when the application
    says so: "trusted" for the people of the company that registered it, "remember" when the
    user already allowed the same or wider scopes (``remembered``). A public application is
    always asked about, whatever its row says (RFC 8252 §8.6: any local program can present
    its client id; registration refuses the other modes for it).
    """
    if request.owner_type == "company" or request.out_of_band:
        return True
    if not request.application.confidential:
        return True
    mode = request.application.consent
    if mode == "trusted":
        return user.company_id != request.application.company_id
    if mode == "remember":
        return not remembered
    return True


def resource_owner(request: AuthorizationRequest, user: User) -> ResourceOwner:
    """Who the grant will act for. Company tokens need an admin (Factorial's rule)."""
    if not user.active:
        raise AccessDenied("this account is deactivated.").as_redirectable(
            request.redirect_uri, request.state
        )
    if request.owner_type == "company":
        if not user.admin:
            raise AccessDenied(
                "a company token can only be authorized by an admin of the company."
            ).as_redirectable(request.redirect_uri, request.state)
        return ResourceOwner.for_company(user.company_id, authorized_by=user.id)
    return ResourceOwner.for_user(user)


async def issue_code(
    request: AuthorizationRequest,
    user: User,
    codes: AuthorizationCodeStore,
    clock: Clock,
    lifetime: int,
) -> str:
    """Mint an authorization code for an allowed request (RFC 6749 §4.1.2).

    The code is a 256-bit random value stored only as a digest, valid for ``lifetime`` seconds
    (at most 10 minutes, RFC 6749 §4.1.2), bound to the client, redirect URI, owner, scopes,
    PKCE challenge and resources (RFC 8707 §2.1).
    """
    owner = resource_owner(request, user)
    code = new_secret(AUTHORIZATION_CODE_PREFIX)
    now = clock.now()
    await codes.save(
        NewAuthorizationCode(
            digest=digest(code),
            application_id=request.application.id,
            owner=owner,
            redirect_uri=request.redirect_uri,
            redirect_uri_in_request=request.redirect_uri_in_request,
            scopes=request.scopes,
            code_challenge=request.code_challenge,
            code_challenge_method=request.code_challenge_method,
            created_at=now,
            expires_at=now + lifetime,
            audience=request.audience,
        )
    )
    return code


def success_redirect(request: AuthorizationRequest, code: str, issuer: str) -> str:
    """RFC 6749 §4.1.2 with RFC 9207's ``iss``, which lets clients detect mix-up attacks."""
    params = {"code": code}
    if request.state is not None:
        params["state"] = request.state
    params["iss"] = issuer
    return with_params(request.redirect_uri, params)


def error_redirect(redirect_uri: str, error: OAuthError, state: str | None, issuer: str) -> str:
    """RFC 6749 §4.1.2.1: the error, its description and the state, plus RFC 9207's ``iss``."""
    params = {"error": error.error, "error_description": error.public_description}
    if state is not None:
        params["state"] = state
    params["iss"] = issuer
    return with_params(redirect_uri, params)
