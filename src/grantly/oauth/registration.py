"""Registering a client (RFC 6749 §2): what an admin may create or change.

Confidential applications get a client secret; public ones (browser and mobile apps that
cannot keep a secret, §2.1) get none and must use PKCE. Redirect URIs follow
``redirect_uris.validate_registration``; scopes must be offered by the server.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import redirect_uris as uris
from . import scopes as scope_rules
from .errors import OAuthError
from .models import CONSENT_MODES, ConsentMode


class RegistrationError(ValueError):
    """One or more problems with an application's settings, each said plainly."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class ApplicationDraft:
    name: str
    redirect_uris: tuple[str, ...]
    confidential: bool
    scopes: tuple[str, ...]
    consent: ConsentMode = "always"
    access_token_lifetime: int | None = None


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
    if problems:
        raise RegistrationError(problems)
    return ApplicationDraft(
        name,
        tuple(cleaned),
        confidential,
        granted,
        consent,  # type: ignore[arg-type]  # checked against CONSENT_MODES above
        lifetime,
    )
