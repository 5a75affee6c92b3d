"""Resource indicators (RFC 8707): which protected resources a grant and its tokens are for.

A client names the resources it wants a token for with ``resource``, repeatable, at the
authorization endpoint (§2.1: for the whole grant) and at the token endpoint (§2.2: for the
access token it asks for). Each value "MUST be an absolute URI" and "MUST NOT include a
fragment component" (§2); it must also name a resource Grantly issues tokens for: one of its
own (``{issuer}/api``) or a resource server the operator registered. Anything else is
``invalid_target``. Without any ``resource``, the audience is Grantly's own API, as it was
before resource indicators existed (§2: the server "MAY ... use a predefined default").

A token request may narrow the grant's resources to a subset, never widen them (§2.2: "policy
may limit the acceptable resources to those that were originally granted by the resource owner
or a subset thereof"); the refresh token stays bound to the whole grant.

URIs are compared once normalized as RFC 3986 §6.2.2 and §6.2.3 allow (scheme and host in
lower case, no default port, an empty path for "/"), otherwise character for character.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

from . import scopes as scope_rules
from .clients import ClientCredentials
from .errors import InvalidClient, InvalidScope, InvalidTarget, shown
from .models import API, Audience, ResourceServer
from .params import ParamReader
from .ports import ResourceStore
from .redirect_uris import is_loopback
from .secrets import matches

_DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 3986 §2: never part of a URI, raw.
_NOT_IN_URIS = frozenset('"<>\\^`{|} ')
MAX_URI_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class OwnResources:
    """Grantly's own protected resources, as paths under the issuer: ``/api`` always (and
    another when Grantly serves more, each then a path here). An audience keeps these as the
    path, so a token stays right when the issuer changes."""

    issuer: str = ""
    paths: tuple[str, ...] = (API,)

    def entry_for(self, uri: str) -> str | None:
        """The audience entry of a normalized URI, when it is one of Grantly's own."""
        for path in self.paths:
            try:
                if normalize(self.issuer + path) == uri:
                    return path
            except InvalidTarget:
                return None  # no issuer (a test of the core): its own cannot be named
        return None

    def names(self, value: str) -> bool:
        """Whether a URI, as written, names one of Grantly's own resources."""
        try:
            return self.entry_for(normalize(value.strip())) is not None
        except InvalidTarget:
            return False

    def uri(self, entry: str) -> str:
        """An audience entry as the absolute URI a resource knows itself by (``aud``)."""
        return self.issuer + entry if entry.startswith("/") else entry


@dataclass(frozen=True, slots=True)
class Target:
    """A resource a request named: its audience entry, the URI it was named by (normalized;
    empty for the default), and the scopes it declares (none: any scope the server offers)."""

    entry: str
    uri: str = ""
    scopes: tuple[str, ...] = ()


def _split(value: str) -> SplitResult:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise InvalidTarget(f"the resource '{shown(value)}' is not a valid URI.") from None
    return parts


def normalize(value: str) -> str:
    """An absolute URI without fragment (RFC 8707 §2), normalized (RFC 3986 §6.2.2-6.2.3), or
    ``invalid_target``."""
    if any(c in _NOT_IN_URIS or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidTarget(
            f"the resource '{shown(value)}' holds characters a URI cannot (RFC 3986 §2)."
        )
    if "#" in value:
        raise InvalidTarget(
            f"the resource '{shown(value)}' has a fragment; RFC 8707 §2 forbids it."
        )
    parts = _split(value)
    scheme = parts.scheme.lower()
    if not scheme:
        raise InvalidTarget(
            f"the resource '{shown(value)}' is not an absolute URI (RFC 8707 §2, RFC 3986 §4.3)."
        )
    if scheme not in _DEFAULT_PORTS:
        return urlunsplit(parts._replace(scheme=scheme))
    if not parts.hostname:
        raise InvalidTarget(f"the resource '{shown(value)}' has no host.")
    userinfo, at, _ = parts.netloc.rpartition("@")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = (userinfo + at) + host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    path = "" if parts.path == "/" else parts.path
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def validate_registration(value: str, *, allow_loopback_http: bool) -> str:
    """The URI of a resource server the operator registers, normalized, or ``ValueError``
    saying what to change. https only (the token is sent there); http only to a loopback
    address, and only when ``allow_loopback_http`` (development), as for redirect URIs
    (RFC 8252 §7.3)."""
    value = value.strip()
    if not value:
        raise ValueError("the resource URI cannot be empty.")
    if len(value) > MAX_URI_LENGTH:
        raise ValueError(f"a resource URI may be at most {MAX_URI_LENGTH} characters.")
    try:
        uri = normalize(value)
    except InvalidTarget as exc:
        raise ValueError(exc.description.replace("the resource", "the URI", 1)) from None
    parts = urlsplit(uri)
    if parts.scheme not in _DEFAULT_PORTS:
        raise ValueError(f"'{value}' must be an https URI.")
    if not parts.hostname:
        raise ValueError(f"'{value}' has no host.")
    if "@" in parts.netloc:
        raise ValueError(f"'{value}' has user information (before '@') in its host.")
    if not parts.hostname.isascii() or "%" in parts.hostname:
        raise ValueError(
            f"'{value}' has a host that is not plain ASCII (write an international domain "
            "name in its xn-- form)."
        )
    if parts.scheme == "http":
        if not is_loopback(uri):
            raise ValueError(
                f"'{value}' uses http; a resource server is reached over https (the access "
                "token travels to it), except on a loopback address in development."
            )
        if not allow_loopback_http:
            raise ValueError(
                f"'{value}' uses http, which only development allows (GRANTLY_ENV=development), "
                "on a loopback address; use https."
            )
    return uri


async def requested(
    reader: ParamReader, own: OwnResources, servers: ResourceStore
) -> tuple[Target, ...]:
    """The resources an authorization request names (RFC 8707 §2.1), each one Grantly issues
    tokens for, else ``invalid_target``; none named: Grantly's own API."""
    targets: dict[str, Target] = {}
    for value in reader.get_all("resource"):
        uri = normalize(value)
        entry = own.entry_for(uri)
        if entry is not None:
            targets.setdefault(entry, Target(entry, uri))
            continue
        server = await servers.by_uri(uri)
        if server is None:
            raise InvalidTarget(
                f"'{shown(value, 80)}' is not a resource this server issues tokens for; "
                f"Grantly's own API is {own.uri(API)}."
            )
        targets.setdefault(server.uri, Target(server.uri, uri, server.scopes))
    return tuple(targets.values()) or (Target(API),)


def scopes_for(
    targets: Sequence[Target], requested_scopes: Sequence[str], granted: tuple[str, ...]
) -> tuple[str, ...]:
    """The scopes of a grant for these resources. ``granted`` are already scopes the
    application has (RFC 6749 §3.3); a resource that declares scopes takes only those
    (RFC 8707 §2.2: "downscope ... to the value the respective resource is able to process").
    Asked for explicitly, every scope must suit every resource (else ``invalid_scope``); left
    to the default, the application's scopes are narrowed to those all of them take."""
    declared = [target.scopes for target in targets if target.scopes]
    if not declared:
        return granted
    accepted = tuple(s for s in granted if all(s in scopes for scopes in declared))
    if requested_scopes:
        refused = [s for s in granted if s not in accepted]
        if refused:
            raise InvalidScope(
                f"{', '.join(repr(shown(s)) for s in refused[:5])} is not a scope every "
                "requested resource takes; ask for fewer scopes or fewer resources."
            )
    elif not accepted:
        raise InvalidScope(
            "none of the application's scopes is one every requested resource takes."
        )
    return accepted


def narrowed(reader: ParamReader, granted: Audience, own: OwnResources) -> Audience:
    """The audience of an access token asked for at the token endpoint (RFC 8707 §2.2): the
    grant's, or the subset of it the request names; a resource the grant was not authorized
    for is ``invalid_target``."""
    values = reader.get_all("resource")
    if not values:
        return granted
    chosen: set[str] = set()
    for value in values:
        uri = normalize(value)
        entry = own.entry_for(uri) or uri
        if entry not in granted:
            raise InvalidTarget(
                f"the grant was not authorized for '{shown(value, 80)}'; a token request may "
                "name only resources of the authorization, or fewer (RFC 8707 §2.2)."
            )
        chosen.add(entry)
    return tuple(entry for entry in granted if entry in chosen)


def audience_claim(audience: Audience, own: OwnResources) -> str | list[str]:
    """RFC 7662 §2.2 ``aud``: a string for one resource, an array for several (as RFC 7519
    §4.1.3 writes it)."""
    uris = [own.uri(entry) for entry in audience]
    return uris[0] if len(uris) == 1 else uris


def authenticate_server(
    credentials: ClientCredentials, server: ResourceServer | None
) -> ResourceServer:
    """A resource server's own credentials (RFC 7662 §2.1: the endpoint "MUST require some
    form of authorization"), by secret only; the same answer for an unknown server and a
    wrong secret, as for applications."""
    if server is None or credentials.client_secret is None:
        raise InvalidClient("client authentication failed: unknown client or wrong secret.")
    if not matches(credentials.client_secret, server.secret_digest):
        raise InvalidClient("client authentication failed: unknown client or wrong secret.")
    return server


def registered_scopes(values: Iterable[str], server_scopes: Sequence[str]) -> tuple[str, ...]:
    """The scopes a resource server declares: scopes the server offers (one vocabulary, so an
    application can be registered for them), or ``ValueError``."""
    try:
        return scope_rules.validate_registration(
            [s for value in values for s in scope_rules.parse(value)], server_scopes
        )
    except InvalidScope as exc:
        raise ValueError(exc.description) from None
