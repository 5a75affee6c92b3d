"""Redirect URIs: what may be registered and how a requested one is matched.

RFC 6749 §3.1.2: absolute URIs without a fragment. RFC 9700 §2.1 and §4.1.3: the requested
redirect URI is compared with the registered ones by exact string matching, no patterns.
``urn:ietf:wg:oauth:2.0:oob`` (out of band) is accepted, as Doorkeeper and Factorial do: the
code is then displayed to the person instead of being sent anywhere.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

OUT_OF_BAND = "urn:ietf:wg:oauth:2.0:oob"

# Parameters Grantly adds to the redirect URI: a registered URI must not carry them already,
# or the response would hold them twice (RFC 6749 §3.1).
RESPONSE_PARAMETERS = {"code", "state", "iss", "error", "error_description", "error_uri"}


# RFC 3986 §2: characters that are never part of a URI; raw in a redirect URI they would also
# be raw in the pages and headers that carry it.
_NOT_IN_URIS = frozenset('"<>\\^`{|}')


class InvalidRedirectUri(ValueError):
    pass


def _split(uri: str) -> SplitResult | None:
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    return parts


def is_loopback(uri: str) -> bool:
    """RFC 8252 §8.3: ``localhost`` or a loopback IP literal (127.0.0.0/8, ::1) — never a DNS
    name that merely starts with "127."."""
    parts = _split(uri)
    host = (parts.hostname or "") if parts else ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_registration(uri: str, *, confidential: bool) -> str:
    """Check one redirect URI an admin registers. Returns it unchanged or raises."""
    uri = uri.strip()
    if uri == OUT_OF_BAND:
        return uri
    if not uri:
        raise InvalidRedirectUri("a redirect URI cannot be empty.")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in uri):
        raise InvalidRedirectUri(f"{uri!r} contains white space or control characters.")
    if len(uri) > 2000:
        raise InvalidRedirectUri("a redirect URI may be at most 2000 characters.")
    scheme = uri.partition(":")[0].lower()
    if scheme in ("javascript", "data", "file", "vbscript"):
        raise InvalidRedirectUri(f"the '{scheme}:' scheme cannot be a redirect URI.")
    if forbidden := sorted(_NOT_IN_URIS.intersection(uri)):
        raise InvalidRedirectUri(
            f"{uri!r} contains {' '.join(forbidden)}, which a URI cannot hold unencoded "
            "(RFC 3986 §2); percent-encode them."
        )
    parts = _split(uri)
    if parts is None:
        raise InvalidRedirectUri(f"'{uri}' is not a valid URI (malformed host or port).")
    if "@" in parts.netloc:
        # https://trusted.example@evil.example/cb reads as trusted.example to a person and
        # goes to evil.example (RFC 3986 §3.2.1 userinfo; RFC 9700 §4.1.3).
        raise InvalidRedirectUri(f"'{uri}' has user information (before '@') in its host.")
    if parts.port == 0 or parts.netloc.endswith(":"):
        raise InvalidRedirectUri(f"'{uri}' has an empty or zero port.")
    host = parts.hostname or ""
    if not host.isascii() or "%" in host:
        # A browser would refuse the URI or read another host than a person does.
        raise InvalidRedirectUri(
            f"'{uri}' has a host that is not plain ASCII (write an international domain name "
            "in its xn-- form, and no percent-encoding in the host)."
        )
    if not parts.scheme:
        raise InvalidRedirectUri(f"'{uri}' is not an absolute URI (RFC 6749 §3.1.2).")
    if "#" in uri:
        raise InvalidRedirectUri(f"'{uri}' has a fragment; RFC 6749 §3.1.2 forbids it.")
    if "*" in uri:
        raise InvalidRedirectUri(f"'{uri}' has a wildcard; redirect URIs match exactly.")
    clashing = sorted({k for k, _ in parse_qsl(parts.query)} & RESPONSE_PARAMETERS)
    if clashing:
        raise InvalidRedirectUri(
            f"'{uri}' already has {', '.join(clashing)} in its query; the authorization "
            "response adds those parameters itself."
        )
    scheme = parts.scheme.lower()
    if scheme in ("https", "http"):
        if not parts.hostname:
            raise InvalidRedirectUri(f"'{uri}' has no host.")
        if scheme == "http" and not is_loopback(uri):
            raise InvalidRedirectUri(
                f"'{uri}' uses http; only https is allowed, except for loopback addresses "
                "(RFC 9700 §2.6, RFC 8252 §7.3)."
            )
        return uri
    if confidential:
        raise InvalidRedirectUri(
            f"'{uri}' uses a custom scheme, which only public (native) applications may use "
            "(RFC 8252 §7.1)."
        )
    if "." not in scheme:
        # RFC 8252 §7.1: private-use schemes are reverse domain names (com.example.app:/cb).
        raise InvalidRedirectUri(
            f"custom scheme '{scheme}:' must be a reverse domain name, such as com.example.app."
        )
    return uri


def _authority_and_rest(uri: str) -> tuple[str, str] | None:
    """An ``http://`` URI's authority and everything after it, exactly as written."""
    if not uri.startswith("http://"):
        return None
    after = uri[len("http://") :]
    end = min((i for i in (after.find(c) for c in "/?#") if i >= 0), default=len(after))
    return after[:end], after[end:]


def _host_and_port(authority: str) -> tuple[str, str | None] | None:
    """The host exactly as written and the port's digits (None when absent), or None when
    the authority has user information or a port that is empty, zero, not a number or
    written with leading zeros."""
    if "@" in authority:
        return None
    if authority.startswith("["):
        host, bracket, rest = authority.partition("]")
        host += bracket
    else:
        host, colon, port_digits = authority.partition(":")
        rest = colon + port_digits
    if not rest:
        return host, None
    port = rest[1:] if rest.startswith(":") else ""
    if (
        not (port.isascii() and port.isdigit())
        or port != str(int(port))
        or not 0 < int(port) < 65536
    ):
        return None
    return host, port


def matches(requested: str, registered: str, *, native: bool = False) -> bool:
    """RFC 9700 §4.1.3: exact string comparison, with one exception: for native (public)
    clients, a loopback http redirect URI may differ in its port (RFC 8252 §7.3), because the
    app listens on whatever port is free when it starts. Everything else is compared as
    written, character for character (the host's case, an empty query); the port must be a
    real one (1-65535, no leading zeros). RFC 8252 §8.3 prefers the loopback IP literals
    (``127.0.0.1``, ``[::1]``) to ``localhost``, which a resolver could send elsewhere."""
    if requested == registered:
        return True
    if not (native and registered.startswith("http://") and is_loopback(registered)):
        return False
    asked, known = _authority_and_rest(requested), _authority_and_rest(registered)
    if asked is None or known is None or asked[1] != known[1]:
        return False
    asked_host, known_host = _host_and_port(asked[0]), _host_and_port(known[0])
    return asked_host is not None and known_host is not None and asked_host[0] == known_host[0]


def with_params(uri: str, params: dict[str, str]) -> str:
    """Add response parameters to the redirect URI's query. The URI's own query is kept
    exactly as registered (RFC 6749 §3.1.2: "MUST retain the query component")."""
    parts = urlsplit(uri)
    added = urlencode(params)
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit(parts._replace(query=query))
