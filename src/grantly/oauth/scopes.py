"""Scopes (RFC 6749 §3.3).

A scope parameter is a list of space-delimited, case-sensitive strings. Factorial's guides also
write them with commas (``scope=read,write``), so commas are accepted as separators too. The
order of a scope set carries no meaning: Grantly keeps the order of the server's scope list so
that responses are stable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .errors import InvalidScope, shown

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")

# What a scope lets an application do, in the words of the person asked: a user token acts as
# that person, a company token for the company as a whole, independent of any person.
DESCRIPTIONS: dict[str, dict[str, str]] = {
    "user": {
        "read": "See your company's data, exactly as you can see it in the app.",
        "write": "Create and change data on your behalf, where you are allowed to.",
    },
    "company": {
        "read": "See all of the company's data, as the company itself.",
        "write": "Create and change any of the company's data, as the company itself "
        "rather than as any one person.",
    },
}


def describe(scope: str, owner_type: str = "user") -> str:
    descriptions = DESCRIPTIONS.get(owner_type, DESCRIPTIONS["user"])
    return descriptions.get(scope, f"Use the '{scope}' permission.")


def parse(raw: str | None) -> tuple[str, ...]:
    """Split a scope parameter on spaces and commas, dropping repeats, keeping order."""
    if raw is None:
        return ()
    tokens: list[str] = []
    for token in re.split(r"[ ,]+", raw.strip()):
        if not token:
            continue
        if not _SCOPE_TOKEN.match(token):
            raise InvalidScope(f"'{shown(token)}' is not a valid scope name (RFC 6749 §3.3).")
        if token not in tokens:
            tokens.append(token)
    return tuple(tokens)


def ordered(scopes: Iterable[str], reference: Sequence[str]) -> tuple[str, ...]:
    """The scopes in the order of ``reference`` (unknown ones last, as given)."""
    given = list(dict.fromkeys(scopes))
    known = [s for s in reference if s in given]
    return tuple(known + [s for s in given if s not in reference])


def to_string(scopes: Iterable[str]) -> str:
    return " ".join(scopes)


def validate_registration(scopes: Iterable[str], server_scopes: Sequence[str]) -> tuple[str, ...]:
    """Scopes an application is registered with must all be scopes the server offers."""
    scopes = tuple(dict.fromkeys(scopes))
    unknown = [s for s in scopes if s not in server_scopes]
    if unknown:
        raise InvalidScope(
            f"unknown scope {', '.join(repr(shown(s)) for s in unknown[:5])}; "
            f"this server offers: {' '.join(server_scopes)}."
        )
    return ordered(scopes, server_scopes)


def resolve_requested(
    requested: tuple[str, ...], allowed: Sequence[str], server_scopes: Sequence[str]
) -> tuple[str, ...]:
    """The scopes an authorization or refresh request ends up with.

    No scope requested means the application's own scopes (RFC 6749 §3.3 lets the server pick a
    default). A request for anything the application was not registered with is refused with
    ``invalid_scope``, never silently widened.
    """
    if not requested:
        return ordered(allowed, server_scopes)
    excess = [s for s in requested if s not in allowed]
    if excess:
        raise InvalidScope(
            f"the application may not request {', '.join(repr(shown(s)) for s in excess[:5])}; "
            f"it is registered for: {to_string(allowed) or '(no scopes)'}."
        )
    return ordered(requested, server_scopes)
