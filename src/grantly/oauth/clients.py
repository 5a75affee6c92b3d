"""Client authentication at the token endpoint (RFC 6749 §2.3, §3.2.1).

Confidential clients authenticate with ``client_secret_basic`` (HTTP Basic, §2.3.1, preferred)
or ``client_secret_post`` (the secret in the body, as Factorial's guides show), or, when their
admins chose it, with ``private_key_jwt`` (RFC 7523 §2.2: ``client_assertions``). Public clients
send only their ``client_id`` (§3.2.1) and must then prove possession with PKCE. A client may
use one method only (§2.3: "MUST NOT use more than one authentication method").
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

from .errors import InvalidClient, InvalidRequest
from .models import Application
from .params import ParamReader
from .ports import ApplicationStore
from .secrets import matches

if TYPE_CHECKING:
    from .client_assertions import Authenticator

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """What a request presented to identify its client."""

    client_id: str | None
    client_secret: str | None
    method: str  # one of AUTH_METHODS
    assertion: str | None = None  # private_key_jwt: the signed JWT


def from_request(
    authorization_header: str | None,
    body_client_id: str | None,
    body_secret: str | None,
    assertion_type: str | None = None,
    assertion: str | None = None,
) -> ClientCredentials:
    """Read the client's credentials from the Authorization header or the body."""
    if assertion is not None or assertion_type is not None:
        return _assertion(
            authorization_header, body_client_id, body_secret, assertion_type, assertion
        )
    if authorization_header and authorization_header[:6].lower() == "basic ":
        if body_secret is not None:
            raise InvalidRequest(
                "the client authenticated twice (HTTP Basic and client_secret in the body); "
                "use one method (RFC 6749 §2.3)."
            )
        client_id, secret = _decode_basic(authorization_header[6:].strip())
        if body_client_id is not None and body_client_id != client_id:
            raise InvalidRequest("client_id in the body differs from the one in HTTP Basic.")
        return ClientCredentials(client_id, secret, "client_secret_basic")
    if body_secret is not None:
        return ClientCredentials(body_client_id, body_secret, "client_secret_post")
    return ClientCredentials(body_client_id, None, "none")


def from_params(authorization_header: str | None, reader: ParamReader) -> ClientCredentials:
    """``from_request`` with the body's parameters of a client endpoint."""
    return from_request(
        authorization_header,
        reader.get("client_id"),
        reader.get("client_secret"),
        reader.get("client_assertion_type"),
        reader.get("client_assertion"),
    )


def _assertion(
    authorization_header: str | None,
    body_client_id: str | None,
    body_secret: str | None,
    assertion_type: str | None,
    assertion: str | None,
) -> ClientCredentials:
    """RFC 7521 §4.2: ``client_assertion_type`` and ``client_assertion`` together; the
    ``client_id`` is optional (RFC 7523 §3: the assertion's ``sub`` names the client), read
    here unverified only to find the client whose keys verify it."""
    if assertion_type != ASSERTION_TYPE or not assertion:
        raise InvalidRequest(
            f"client_assertion_type must be {ASSERTION_TYPE}, sent with a client_assertion."
        )
    if body_secret is not None or (
        authorization_header and authorization_header[:6].lower() == "basic "
    ):
        raise InvalidRequest(
            "the client authenticated twice (a client assertion and a secret); use one "
            "method (RFC 6749 §2.3)."
        )
    subject = _unverified_subject(assertion)
    if body_client_id is not None and subject is not None and body_client_id != subject:
        raise InvalidClient("client_id differs from the client assertion's sub.")
    return ClientCredentials(body_client_id or subject, None, "private_key_jwt", assertion)


def _unverified_subject(assertion: str) -> str | None:
    parts = assertion.split(".")
    if len(parts) != 3:
        raise InvalidClient("the client assertion is not a compact JWS.")
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        raise InvalidClient("the client assertion's claims are not JSON.") from None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    if not isinstance(sub, str) or not 0 < len(sub) <= _MAX_BASIC_PART:
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in sub):
        return None
    return sub


def _decode_basic(encoded: str) -> tuple[str, str]:
    """RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined by ':' and base64'd."""
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidClient("the HTTP Basic credentials are not valid base64.") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id:
        raise InvalidClient("the HTTP Basic credentials must be client_id:client_secret.")
    client_id, secret = unquote_plus(client_id), unquote_plus(secret)
    # The body's parameters are bounded and free of control characters (``params.py``); the
    # header's must be too, or a NUL would reach the database as part of a client id.
    for value in (client_id, secret):
        if len(value) > _MAX_BASIC_PART or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise InvalidClient(
                "the HTTP Basic credentials hold control characters or are too long."
            )
    return client_id, secret


_MAX_BASIC_PART = 512


async def authenticate(
    credentials: ClientCredentials,
    applications: ApplicationStore,
    authenticator: Authenticator | None = None,
) -> Application:
    """Return the authenticated application or raise ``invalid_client`` (RFC 6749 §5.2)."""
    application = await applications.by_client_id(claimed_id(credentials))
    return await check(credentials, application, authenticator)


async def check(
    credentials: ClientCredentials,
    application: Application | None,
    authenticator: Authenticator | None,
) -> Application:
    """``verify``, and for an application that authenticates with ``private_key_jwt`` (RFC
    7523 §2.2) its client assertion: such an application may use no other method, and no
    other application may use that one (RFC 6749 §2.3: the method is the client's, chosen at
    registration)."""
    if application is not None and application.auth_method == "private_key_jwt":
        if credentials.assertion is None:
            raise InvalidClient(
                "this application authenticates with private_key_jwt: send a client_assertion "
                "signed with its key."
            )
        if authenticator is None:
            raise InvalidClient("private_key_jwt is not accepted at this endpoint.")
        await authenticator.verify(credentials.assertion, application)
        return application
    if credentials.assertion is not None:
        if application is None:
            raise InvalidClient("client authentication failed: unknown client or wrong secret.")
        raise InvalidClient("this application does not authenticate with private_key_jwt.")
    return verify(credentials, application)


def claimed_id(credentials: ClientCredentials) -> str:
    """The client_id the request claims; ``invalid_client`` when it claims none."""
    if credentials.client_id is None:
        raise InvalidClient(
            "client authentication is missing: send client_id and client_secret with HTTP "
            "Basic or in the body."
        )
    return credentials.client_id


def verify(credentials: ClientCredentials, application: Application | None) -> Application:
    """RFC 6749 §2.3.1, §3.2.1: the application the credentials name, if they authenticate
    it; else ``invalid_client``. The same answer is given for an unknown client and a wrong
    secret, so the endpoint does not tell which client ids exist."""
    if application is None:
        raise InvalidClient("client authentication failed: unknown client or wrong secret.")
    if application.confidential:
        if credentials.client_secret is None or application.secret_digest is None:
            raise InvalidClient(
                "this application is confidential: it must authenticate with its client_secret."
            )
        if not matches(credentials.client_secret, application.secret_digest):
            raise InvalidClient("client authentication failed: unknown client or wrong secret.")
    elif credentials.client_secret:
        # A public client has no secret: one that sends a secret is confused or an impostor.
        raise InvalidClient("this application is public and has no client_secret.")
    return application
