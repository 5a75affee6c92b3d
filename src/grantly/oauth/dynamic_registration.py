"""Dynamic client registration (RFC 7591) and its management protocol (RFC 7592): what a client
that registers itself may say about itself, and what it is told back.

A registered client belongs to no company (an agent application): people of any company may
authorize it for user tokens, their company permitting. Its redirect URIs follow the
dashboard's rules (``redirect_uris.validate_registration``), so registering is no way around
them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import redirect_uris as uris
from . import scopes as scope_rules
from .client_documents import display_name
from .errors import OAuthError
from .models import Application
from .secrets import matches

# RFC 7591 §2: a client that says nothing is a confidential one using HTTP Basic.
DEFAULT_AUTH_METHOD = "client_secret_basic"
AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")
GRANT_TYPES = ("authorization_code", "refresh_token")
MAX_REDIRECT_URIS = 20
MAX_NAME = 200
# Informational fields kept and returned as the client gave them (RFC 7591 §2), when strings.
TEXT_FIELDS = ("software_id", "software_version")
URL_FIELDS = ("client_uri", "logo_uri", "tos_uri", "policy_uri")
# RFC 7592 §2.2: fields of the server's own that a client must not send in an update.
SERVER_FIELDS = (
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
)


class InvalidClientMetadata(OAuthError):
    """RFC 7591 §3.2.2."""

    error = "invalid_client_metadata"


class InvalidRedirectUri(OAuthError):
    """RFC 7591 §3.2.2."""

    error = "invalid_redirect_uri"


@dataclass(frozen=True, slots=True)
class ClientRegistration:
    """Validated client metadata: what is stored, and returned as the client's metadata."""

    client_name: str
    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: str
    grant_types: tuple[str, ...]
    scopes: tuple[str, ...]
    extra: dict[str, object]  # informational fields, kept as given

    @property
    def confidential(self) -> bool:
        return self.token_endpoint_auth_method != "none"

    def metadata(self) -> dict[str, object]:
        return {
            "client_name": self.client_name,
            "redirect_uris": list(self.redirect_uris),
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "grant_types": list(self.grant_types),
            "response_types": ["code"],
            "scope": scope_rules.to_string(self.scopes),
            **self.extra,
        }


def _strings(value: object, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidClientMetadata(f"{name} must be a JSON array of strings.")
    return list(value)


def validate(document: object, server_scopes: Sequence[str]) -> ClientRegistration:
    """RFC 7591 §2 and §3.2.2: the metadata of a registration (or of an RFC 7592 update), or
    ``invalid_redirect_uri`` / ``invalid_client_metadata`` naming the first problem. Fields
    this server does not know are ignored (§2: "MUST ignore")."""
    if not isinstance(document, dict):
        raise InvalidClientMetadata("the request body must be a JSON object of client metadata.")
    method = document.get("token_endpoint_auth_method", DEFAULT_AUTH_METHOD)
    if method not in AUTH_METHODS:
        raise InvalidClientMetadata(
            f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}."
        )
    confidential = method != "none"
    grant_types = _strings(document.get("grant_types", ["authorization_code"]), "grant_types")
    if "authorization_code" not in grant_types:
        raise InvalidClientMetadata("grant_types must include authorization_code.")
    if unsupported := [grant for grant in grant_types if grant not in GRANT_TYPES]:
        raise InvalidClientMetadata(
            f"grant type {unsupported[0][:100]!r} is not supported; use authorization_code "
            "and refresh_token."
        )
    response_types = _strings(document.get("response_types", ["code"]), "response_types")
    if response_types != ["code"]:
        raise InvalidClientMetadata('response_types must be ["code"].')
    if "redirect_uris" not in document:
        raise InvalidRedirectUri("redirect_uris is required for the authorization code grant.")
    given = _strings(document["redirect_uris"], "redirect_uris")
    if not given:
        raise InvalidRedirectUri("redirect_uris must name at least one redirect URI.")
    cleaned: list[str] = []
    for raw in given:
        if raw == uris.OUT_OF_BAND:
            raise InvalidRedirectUri("a registered client cannot use out-of-band codes.")
        try:
            uri = uris.validate_registration(raw, confidential=confidential)
        except uris.InvalidRedirectUri as exc:
            raise InvalidRedirectUri(str(exc)) from None
        if uri not in cleaned:
            cleaned.append(uri)
    if len(cleaned) > MAX_REDIRECT_URIS:
        raise InvalidRedirectUri(f"at most {MAX_REDIRECT_URIS} redirect URIs may be registered.")
    claimed = document.get("client_name")
    if claimed is None:
        claimed = urlsplit(cleaned[0]).hostname or "Unnamed application"
    name = display_name(claimed, MAX_NAME) if isinstance(claimed, str) else ""
    if not name:
        raise InvalidClientMetadata("client_name must be a non-empty string.")
    scope = document.get("scope")
    if scope is None:
        granted = tuple(server_scopes)
    else:
        if not isinstance(scope, str):
            raise InvalidClientMetadata("scope must be a string of space-separated scopes.")
        try:
            granted = scope_rules.validate_registration(scope.split(), server_scopes)
        except OAuthError as exc:
            raise InvalidClientMetadata(exc.description) from None
        if not granted:
            granted = tuple(server_scopes)
    extra: dict[str, object] = {}
    for field in URL_FIELDS:
        value = document.get(field)
        if value is None:
            continue
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            raise InvalidClientMetadata(f"{field} must be an http(s) URL.")
        if len(value) > 2048:
            raise InvalidClientMetadata(f"{field} is too long.")
        extra[field] = value
    for field in TEXT_FIELDS:
        value = document.get(field)
        if isinstance(value, str) and len(value) <= 200:
            extra[field] = value
    contacts = document.get("contacts")
    if contacts is not None:
        extra["contacts"] = [c[:320] for c in _strings(contacts, "contacts")][:10]
    return ClientRegistration(
        client_name=name,
        redirect_uris=tuple(cleaned),
        token_endpoint_auth_method=method,
        grant_types=tuple(dict.fromkeys(grant_types)),
        scopes=granted,
        extra=extra,
    )


def validate_update(
    document: object, application: Application, server_scopes: Sequence[str]
) -> ClientRegistration:
    """RFC 7592 §2.2: an update replaces the client's metadata; it names the client it updates,
    carries none of the server's own fields (a secret only if it is the current one), and
    keeps the client's authentication method (a public client cannot be given a secret in
    place, nor a confidential one lose it)."""
    if not isinstance(document, dict):
        raise InvalidClientMetadata("the request body must be a JSON object of client metadata.")
    if document.get("client_id") != application.client_id:
        raise InvalidClientMetadata("client_id must be present and match the registration.")
    for field in SERVER_FIELDS:
        if field in document:
            raise InvalidClientMetadata(f"an update must not include {field}.")
    if "client_secret" in document:
        # §2.2: a secret sent with an update MUST be the client's current one.
        secret = document["client_secret"]
        if not (
            isinstance(secret, str)
            and application.secret_digest is not None
            and matches(secret, application.secret_digest)
        ):
            raise InvalidClientMetadata("client_secret is not this client's secret.")
    given = {
        key: value for key, value in document.items() if key not in ("client_id", "client_secret")
    }
    registration = validate(given, server_scopes)
    if registration.confidential != application.confidential:
        raise InvalidClientMetadata(
            "token_endpoint_auth_method cannot switch between a public and a confidential "
            "client; register a new client instead."
        )
    return registration


def stored_method(application: Application) -> str:
    """The authentication method a registered client asked for, from its stored metadata."""
    method = metadata_of(application).get("token_endpoint_auth_method")
    if isinstance(method, str) and method in AUTH_METHODS:
        return method
    return DEFAULT_AUTH_METHOD if application.confidential else "none"


def metadata_of(application: Application) -> dict[str, object]:
    try:
        loaded = json.loads(application.client_metadata or "{}")
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def information(
    application: Application,
    *,
    registration_client_uri: str,
    client_secret: str | None = None,
    registration_access_token: str | None = None,
    issued_at: int | None = None,
) -> dict[str, object]:
    """RFC 7591 §3.2.1 / RFC 7592 §3: the client information response. The secret and the
    registration access token exist in clear only in the response that issued them."""
    body: dict[str, object] = {"client_id": application.client_id, **metadata_of(application)}
    if issued_at is not None:
        body["client_id_issued_at"] = issued_at
    if client_secret is not None:
        body["client_secret"] = client_secret
    if application.confidential:
        body["client_secret_expires_at"] = 0  # never
    if registration_access_token is not None:
        body["registration_access_token"] = registration_access_token
    body["registration_client_uri"] = registration_client_uri
    return body
