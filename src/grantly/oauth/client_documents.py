"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, as the MCP
authorization specification uses them): a ``client_id`` that is an https URL names a JSON
document, published by the client, that is its metadata (RFC 7591 §2 names).

This module holds the rules, not the fetch (``grantly.outbound`` does that): which URLs may be
a client_id (§3), and what a fetched document must say to be used (§4.1).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import redirect_uris as uris

# §4.1: the document is small; a bigger body is refused before it is parsed.
MAX_DOCUMENT_BYTES = 5 * 1024
MAX_CLIENT_NAME = 200
MAX_CLIENT_ID = 2048  # what a client_id column holds, and the longest OAuth parameter
# Fields that only make sense for a client with a secret, which a document cannot hold (§4.1).
SECRET_FIELDS = ("client_secret", "client_secret_expires_at")
SYMMETRIC_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "client_secret_jwt")


class InvalidClientDocument(ValueError):
    """The client_id URL or the document it names cannot be used; the message says why."""


def is_document_url(client_id: str) -> bool:
    """Whether a client_id is meant as a metadata document URL (an ``https://`` URL): such a
    client_id is then held to §3's rules, never looked up as a registered one."""
    return client_id.startswith("https://")


def check_url(client_id: str) -> str:
    """§3: an https URL with a path, without fragment, userinfo, dot segments or query."""
    try:
        parts = urlsplit(client_id)
        port = parts.port
    except ValueError:
        raise InvalidClientDocument("the client_id is not a valid URL.") from None
    if parts.scheme != "https":
        raise InvalidClientDocument("a client metadata document URL must use https.")
    if not parts.hostname:
        raise InvalidClientDocument("the client_id URL has no host.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidClientDocument("the client_id URL must not contain a user name or password.")
    if "#" in client_id or parts.fragment:
        raise InvalidClientDocument("the client_id URL must not contain a fragment.")
    if parts.query or "?" in client_id:
        raise InvalidClientDocument("the client_id URL must not contain a query.")
    if not parts.path or parts.path == "/":
        raise InvalidClientDocument("the client_id URL must contain a path.")
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        raise InvalidClientDocument("the client_id URL must not contain . or .. segments.")
    if any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7E for c in client_id):
        raise InvalidClientDocument("the client_id URL must be plain printable ASCII.")
    if port == 0:
        raise InvalidClientDocument("the client_id URL has no usable port.")
    labels = parts.hostname.rstrip(".").split(".")
    if len(parts.hostname) > 253 or any(not label or len(label) > 63 for label in labels):
        raise InvalidClientDocument("the client_id URL's host name is not valid.")
    if len(client_id) > MAX_CLIENT_ID:
        raise InvalidClientDocument(
            f"the client_id URL may be at most {MAX_CLIENT_ID} characters long."
        )
    return client_id


@dataclass(frozen=True, slots=True)
class ClientDocument:
    """A document that passed §4.1's checks: what Grantly keeps of it."""

    client_id: str
    client_name: str
    redirect_uris: tuple[str, ...]
    client_uri: str | None
    logo_uri: str | None


def display_name(value: str, limit: int) -> str:
    """A name a client gives itself, as a person is shown it: without control or format
    characters (a zero-width space would make it invisible, a right-to-left override show it
    backwards), whitespace collapsed, at most ``limit`` characters; empty if nothing is left."""
    kept = "".join(c for c in value if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co"))
    return " ".join(kept.split())[:limit]


def _optional_url(document: dict[str, object], name: str) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise InvalidClientDocument(f"{name} must be an http(s) URL.")
    return value


def parse(client_id: str, document: object) -> ClientDocument:
    """§4.1: the document's ``client_id`` equals the URL it was fetched from (exact string
    match), it holds no secret and no symmetric authentication method (it is public: anyone can
    read it), and its ``redirect_uris`` follow the same rules as the dashboard's for a public
    client (RFC 8252 for native ones)."""
    if not isinstance(document, dict):
        raise InvalidClientDocument("the client metadata document must be a JSON object.")
    if document.get("client_id") != client_id:
        raise InvalidClientDocument("the document's client_id is not the URL it was fetched from.")
    for name in SECRET_FIELDS:
        if name in document:
            raise InvalidClientDocument(f"a client metadata document must not contain {name}.")
    method = document.get("token_endpoint_auth_method", "none")
    if method in SYMMETRIC_AUTH_METHODS:
        raise InvalidClientDocument(
            f"token_endpoint_auth_method {method} needs a shared secret, which a public "
            "document cannot hold; use none."
        )
    if method != "none":
        raise InvalidClientDocument("token_endpoint_auth_method must be none.")
    grant_types = document.get("grant_types", ["authorization_code"])
    if not isinstance(grant_types, list) or "authorization_code" not in grant_types:
        raise InvalidClientDocument("grant_types must include authorization_code.")
    response_types = document.get("response_types", ["code"])
    if not isinstance(response_types, list) or "code" not in response_types:
        raise InvalidClientDocument("response_types must include code.")
    redirects = document.get("redirect_uris")
    if not isinstance(redirects, list) or not redirects:
        raise InvalidClientDocument("redirect_uris must be a non-empty list of URIs.")
    checked = []
    for uri in redirects:
        if not isinstance(uri, str):
            raise InvalidClientDocument("redirect_uris must be a list of strings.")
        if uri == uris.OUT_OF_BAND:
            raise InvalidClientDocument("an agent application cannot use out-of-band codes.")
        try:
            checked.append(uris.validate_registration(uri, confidential=False))
        except uris.InvalidRedirectUri as exc:
            raise InvalidClientDocument(f"redirect_uris: {exc}") from None
    given = document.get("client_name")
    if given is None:
        given = urlsplit(client_id).hostname or client_id
    name = display_name(given, MAX_CLIENT_NAME) if isinstance(given, str) else ""
    if not name:
        raise InvalidClientDocument("client_name must be a non-empty string.")
    return ClientDocument(
        client_id=client_id,
        client_name=name,
        redirect_uris=tuple(checked),
        client_uri=_optional_url(document, "client_uri"),
        logo_uri=_optional_url(document, "logo_uri"),
    )
