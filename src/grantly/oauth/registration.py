"""Registering a client (RFC 6749 §2): what an admin may create or change.

Confidential applications get a client secret; public ones (browser and mobile apps that
cannot keep a secret, §2.1) get none and must use PKCE. Redirect URIs follow
``redirect_uris.validate_registration``; scopes must be offered by the server.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from . import redirect_uris as uris
from . import scopes as scope_rules
from .errors import OAuthError
from .models import (
    CONSENT_MODES,
    DEFAULT_GRANT_TYPES,
    DPOP_MODES,
    GRANT_TYPES,
    TOKEN_FORMATS,
    Application,
    ClientSecurity,
    ConsentMode,
)


class RegistrationError(ValueError):
    """One or more problems with an application's settings, each said plainly."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


PRIVATE_KEY_JWT = "private_key_jwt"
# The methods an admin may choose (RFC 8414 names): the client secret, in the Authorization
# header or the body, is what every confidential application has unless it names its keys.
AUTH_METHOD_CHOICES = ("client_secret", PRIVATE_KEY_JWT)
MAX_JWKS_LENGTH = 16_384


@dataclass(frozen=True, slots=True)
class ApplicationDraft:
    name: str
    redirect_uris: tuple[str, ...]
    confidential: bool
    scopes: tuple[str, ...]
    consent: ConsentMode = "always"
    access_token_lifetime: int | None = None
    security: ClientSecurity = field(default_factory=ClientSecurity)


def security_of(application: Application) -> dict[str, object]:
    """An application's current security settings, as ``validate``'s ``security`` takes them
    (what a change starts from)."""
    return {
        "access_token_format": application.access_token_format,
        "dpop": application.dpop,
        "auth_method": application.auth_method,
        "jwks": application.jwks,
        "jwks_uri": application.jwks_uri,
        "require_par": application.require_par,
        "grant_types": application.grant_types,
    }


def validate_security(
    *,
    confidential: bool,
    access_token_format: str = "opaque",  # noqa: S107  # a format's name, not a secret
    dpop: str = "optional",
    auth_method: str | None = None,
    jwks: str | None = None,
    jwks_uri: str | None = None,
    require_par: bool = False,
    grant_types: Iterable[str] = DEFAULT_GRANT_TYPES,
) -> tuple[ClientSecurity, list[str]]:
    """The security settings, or their problems. ``private_key_jwt`` (RFC 7523 §2.2) needs a
    confidential client and exactly one of a public JWK Set or an https ``jwks_uri`` (fetched
    with the same SSRF rules as client metadata documents); the client credentials grant (RFC
    6749 §4.4) a confidential client, since it authenticates the client alone."""
    problems: list[str] = []
    if access_token_format not in TOKEN_FORMATS:
        problems.append(f"the access-token format must be one of {', '.join(TOKEN_FORMATS)}.")
    if dpop not in DPOP_MODES:
        problems.append(f"DPoP must be one of {', '.join(DPOP_MODES)}.")
    if auth_method in ("", "client_secret", "client_secret_basic", "client_secret_post", "none"):
        auth_method = None
    if auth_method is not None and auth_method != PRIVATE_KEY_JWT:
        problems.append(
            f"the client authentication method must be one of {', '.join(AUTH_METHOD_CHOICES)}."
        )
    jwks = (jwks or "").strip() or None
    jwks_uri = (jwks_uri or "").strip() or None
    if auth_method == PRIVATE_KEY_JWT:
        if not confidential:
            problems.append("private_key_jwt is for confidential applications only.")
        if (jwks is None) == (jwks_uri is None):
            problems.append(
                "private_key_jwt needs the client's public keys: give a JWK Set or a "
                "jwks_uri, one of them."
            )
    elif jwks is not None or jwks_uri is not None:
        problems.append("a JWK Set or jwks_uri is only used with private_key_jwt.")
    if jwks is not None:
        problem = jwks_problem(jwks)
        if problem:
            problems.append(problem)
    if jwks_uri is not None and not _is_https_url(jwks_uri):
        problems.append("the jwks_uri must be an https URL without a fragment.")
    wanted = [g.strip() for g in grant_types if g.strip()]
    unknown = [g for g in wanted if g not in GRANT_TYPES]
    if unknown:
        problems.append(f"grant types must be among {', '.join(GRANT_TYPES)}.")
    extra = tuple(g for g in GRANT_TYPES if g in wanted and g not in DEFAULT_GRANT_TYPES)
    if "client_credentials" in extra and not confidential:
        problems.append("the client credentials grant is for confidential applications only.")
    security = ClientSecurity(
        access_token_format=access_token_format,  # type: ignore[arg-type]  # checked above
        dpop=dpop,  # type: ignore[arg-type]  # checked above
        auth_method=auth_method,
        jwks=jwks,
        jwks_uri=jwks_uri,
        require_par=bool(require_par),
        grant_types=(*DEFAULT_GRANT_TYPES, *extra),
    )
    return security, problems


def _is_https_url(url: str) -> bool:
    try:
        split = urlsplit(url)
        split.port  # noqa: B018 - raises ValueError on a malformed or out-of-range port
    except ValueError:
        return False
    return (
        split.scheme == "https"
        and bool(split.hostname)
        and not split.fragment
        and len(url) <= 2000
        and url.isascii()
        and not any(c.isspace() or ord(c) < 0x20 for c in url)
    )


def jwks_problem(text: str) -> str | None:
    """Why a JWK Set (RFC 7517 §5) cannot authenticate a client, or None: JSON with a
    non-empty ``keys`` array of public EC, RSA or OKP keys, no private parameter."""
    if len(text) > MAX_JWKS_LENGTH:
        return f"the JWK Set may be at most {MAX_JWKS_LENGTH} characters."
    try:
        parsed = json.loads(text)
    except ValueError:
        return "the JWK Set is not valid JSON."
    keys = parsed.get("keys") if isinstance(parsed, dict) else None
    if not isinstance(keys, list) or not keys or len(keys) > 20:
        return 'the JWK Set must be an object with 1 to 20 keys in "keys".'
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in ("EC", "RSA", "OKP"):
            return "every key of the JWK Set must be an EC, RSA or OKP key."
        if any(name in key for name in ("d", "p", "q", "dp", "dq", "qi", "k")):
            return "the JWK Set holds a private key: give only the public keys."
    return None


# RFC 8252 §8.6: any program on a device can claim a public client's id, use a loopback
# redirect and bring its own PKCE challenge; only the person, asked each time, tells them apart.
PUBLIC_CONSENT_PROBLEM = (
    "a public application (no client secret) asks for consent every time: any program on "
    "the device can use its client id (RFC 8252 §8.6), so remember and trusted are for "
    "confidential applications only."
)

MIN_ACCESS_TOKEN_LIFETIME = 60
MAX_ACCESS_TOKEN_LIFETIME = 24 * 3600
LIFETIME_PROBLEM = (
    "the access-token lifetime must be a whole number of seconds between "
    f"{MIN_ACCESS_TOKEN_LIFETIME} and {MAX_ACCESS_TOKEN_LIFETIME} "
    f"(1 day), or none for the server's default."
)


def _lifetime(value: int | str | None) -> tuple[int | None, str | None]:
    """The lifetime, or a problem. A form sends text: digits, or nothing for the default."""
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None, None
        if not (value.isascii() and value.isdigit()) or len(value) > 9:
            return None, LIFETIME_PROBLEM
        value = int(value)
    if value is not None and not (MIN_ACCESS_TOKEN_LIFETIME <= value <= MAX_ACCESS_TOKEN_LIFETIME):
        return None, LIFETIME_PROBLEM
    return value, None


def validate(
    *,
    name: str,
    redirect_uris: Iterable[str],
    confidential: bool,
    scopes: Iterable[str],
    server_scopes: Sequence[str],
    consent: str = "always",
    access_token_lifetime: int | str | None = None,
    security: dict[str, object] | None = None,
) -> ApplicationDraft:
    """The draft, or every problem at once, in the order a form asks: name, redirect URIs,
    scopes, consent, access-token lifetime."""
    problems: list[str] = []
    name = name.strip()
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        problems.append("the name cannot contain control characters.")
    elif not name:
        problems.append("the name cannot be empty.")
    elif len(name) > 200:
        problems.append("the name may be at most 200 characters.")
    cleaned: list[str] = []
    given = [raw for raw in redirect_uris if raw.strip()]
    if not given:
        problems.append("at least one redirect URI is required.")
    for raw in given:
        try:
            uri = uris.validate_registration(raw, confidential=confidential)
        except uris.InvalidRedirectUri as exc:
            problems.append(str(exc))
            continue
        if uri not in cleaned:
            cleaned.append(uri)
    if len(cleaned) > 20:
        problems.append("at most 20 redirect URIs may be registered.")
    try:
        granted = scope_rules.validate_registration(scopes, server_scopes)
    except OAuthError as exc:
        problems.append(exc.description)
        granted = ()
    else:
        if not granted:
            # RFC 6749 §3.3: a scope is one or more scope tokens; a token for nothing is useless.
            problems.append("choose at least one scope.")
    if consent not in CONSENT_MODES:
        problems.append(f"consent must be one of {', '.join(CONSENT_MODES)}.")
    elif not confidential and consent != "always":
        problems.append(PUBLIC_CONSENT_PROBLEM)
    lifetime, lifetime_problem = _lifetime(access_token_lifetime)
    if lifetime_problem:
        problems.append(lifetime_problem)
    checked, security_problems = validate_security(
        confidential=confidential,
        **(security or {}),  # type: ignore[arg-type]
    )
    problems.extend(security_problems)
    if problems:
        raise RegistrationError(problems)
    return ApplicationDraft(
        name,
        tuple(cleaned),
        confidential,
        granted,
        consent,  # type: ignore[arg-type]  # checked against CONSENT_MODES above
        lifetime,
        checked,
    )
