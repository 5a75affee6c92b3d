"""Client authentication at the token endpoint (RFC 6749 §2.3, §3.2.1).

Confidential clients authenticate with ``client_secret_basic`` (HTTP Basic, §2.3.1, preferred)
or ``client_secret_post`` (the secret in the body, as Factorial's guides show). Public clients
send only their ``client_id`` (§3.2.1) and must then prove possession with PKCE. A client may
use one method only (§2.3: "MUST NOT use more than one authentication method").
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import unquote_plus

from .errors import InvalidClient, InvalidRequest
from .models import Application
from .ports import ApplicationStore
from .secrets import matches

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """What a request presented to identify its client."""

    client_id: str | None
    client_secret: str | None
    method: str  # one of AUTH_METHODS


def from_request(
    authorization_header: str | None, body_client_id: str | None, body_secret: str | None
) -> ClientCredentials:
    """Read the client's credentials from the Authorization header or the body."""
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
    credentials: ClientCredentials, applications: ApplicationStore
) -> Application:
    """Return the authenticated application or raise ``invalid_client`` (RFC 6749 §5.2)."""
    return verify(credentials, await applications.by_client_id(claimed_id(credentials)))


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
