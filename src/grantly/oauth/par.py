"""Pushed authorization requests (RFC 9126).

A client POSTs the parameters of its authorization request to ``/oauth/par``, authenticated as
at the token endpoint (§2), and gets a ``request_uri`` (§2.2) to send the person to
``/oauth/authorize`` with, beside its ``client_id`` (§4): the parameters then never travel
through the browser, where they could be read or changed. The request is validated when it is
pushed, as an authorization request would be (§2.1), so that an error reaches the client
directly; the ``request_uri`` is valid for ``LIFETIME`` seconds and good for one authorization
(§4: "one-time use" is recommended); it is a 256-bit random value, kept only as a digest.
An application may require it (§6, ``require_pushed_authorization_requests``).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import clients
from .authorize import AuthorizationPolicy, validate
from .client_assertions import Authenticator
from .clients import ClientCredentials
from .clock import Clock
from .errors import InvalidClient, InvalidRequest, OAuthError
from .params import ParamReader, Params
from .ports import ApplicationStore, PushedRequestStore, ResourceStore
from .secrets import digest, new_secret

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
LIFETIME = 60
# Parameters that authenticate the client at this endpoint, not part of the request pushed.
_CLIENT_AUTHENTICATION = ("client_secret", "client_assertion", "client_assertion_type")


class InvalidRequestUri(OAuthError):
    """RFC 9126 §4 (as OpenID Connect's ``invalid_request_uri``): unknown, used or expired."""

    error = "invalid_request_uri"


@dataclass(frozen=True, slots=True)
class Pushed:
    request_uri: str
    expires_in: int

    def body(self) -> dict[str, object]:
        return {"request_uri": self.request_uri, "expires_in": self.expires_in}


async def push(
    params: Params,
    authorization_header: str | None,
    *,
    applications: ApplicationStore,
    servers: ResourceStore,
    pushed: PushedRequestStore,
    policy: AuthorizationPolicy,
    clock: Clock,
    authenticator: Authenticator | None,
) -> Pushed:
    """RFC 9126 §2.1: authenticate the client; refuse ``request_uri`` in the pushed request;
    the ``client_id`` of the parameters must be the authenticated client's; validate the
    request as the authorization endpoint would, any error answered here as JSON (§2.3)."""
    reader = ParamReader(params, policy.max_parameter_length)
    credentials: ClientCredentials = clients.from_params(authorization_header, reader)
    application = await clients.authenticate(credentials, applications, authenticator)
    if "request_uri" in params:
        raise InvalidRequest("a pushed authorization request may not carry a request_uri.")
    request = {k: list(v) for k, v in params.items() if k not in _CLIENT_AUTHENTICATION}
    named = request.get("client_id")
    if named is not None and named != [application.client_id]:
        raise InvalidClient("the client_id of the request is not the authenticated client's.")
    request["client_id"] = [application.client_id]
    try:
        await validate(request, applications, policy, servers, pushed=True)
    except OAuthError as error:
        error.redirectable = False  # §2.3: answered to the client, never redirected
        raise
    request_uri = REQUEST_URI_PREFIX + new_secret()
    now = clock.now()
    await pushed.save(digest(request_uri), application.id, request, now, now + LIFETIME)
    return Pushed(request_uri, LIFETIME)


async def pushed_params(
    params: Params, pushed: PushedRequestStore, clock: Clock
) -> dict[str, list[str]] | None:
    """The parameters of the pushed request a front-channel request names (RFC 9126 §4), or
    None when it names none; ``invalid_request_uri`` when it is unknown, used, expired, or not
    the client's. Only the pushed parameters count: the others are ignored (§4), but the
    ``client_id`` must be there and be the pusher's."""
    values = params.get("request_uri")
    if not values:
        return None
    if len(values) != 1 or not values[0].startswith(REQUEST_URI_PREFIX):
        raise InvalidRequestUri("the request_uri is not one this server issued.")
    found = await pushed.find(digest(values[0]), clock.now())
    if found is None:
        raise InvalidRequestUri(
            "the request_uri is unknown, expired or already used: the application must push "
            "its authorization request again."
        )
    _application_id, stored = found
    if params.get("client_id") != stored.get("client_id"):
        raise InvalidRequestUri("the request_uri was issued to another client_id.")
    return stored


async def use(request_uri: str, pushed: PushedRequestStore, clock: Clock) -> None:
    """Spend a pushed request on the authorization it made (single use, RFC 9126 §4)."""
    if not await pushed.use(digest(request_uri), clock.now()):
        raise InvalidRequestUri(
            "the request_uri is expired or already used: the application must push its "
            "authorization request again."
        )
