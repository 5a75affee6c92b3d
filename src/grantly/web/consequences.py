"""What a destructive action on the dashboard stops, in the words its confirm step (the page,
or the dialog of a form's ``data-confirm``) says before and its notice says after.

Counts name access and refresh tokens apart: a user authorization holds one of each, so one
sum would say "2 tokens" of a single sign-in. Grants are counted as the people and companies
holding them.
"""

from __future__ import annotations

from ..oauth.models import Application
from ..store.consents import Consent
from ..store.live import LiveTokens
from .pages import plural


def tokens(live: LiveTokens) -> str:
    """ "3 access tokens and 3 refresh tokens", "1 access token", "no token"."""
    parts = []
    if live.access_tokens:
        parts.append(plural(live.access_tokens, "access token"))
    if live.refresh_tokens:
        parts.append(plural(live.refresh_tokens, "refresh token"))
    return " and ".join(parts) or "no token"


def grants(live: LiveTokens) -> str:
    """ "2 user grants and 1 company grant", "no grant"."""
    parts = []
    if live.user_grants:
        parts.append(plural(live.user_grants, "user grant"))
    if live.company_grants:
        parts.append(plural(live.company_grants, "company grant"))
    return " and ".join(parts) or "no grant"


def _end(live: LiveTokens) -> str:
    return f"{grants(live)} {'ends' if live.grants == 1 else 'end'}"


def _stop(live: LiveTokens) -> str:
    verb = "stops" if live.tokens == 1 else "stop"
    return f"{tokens(live)} {verb} working at once"


def delete_application(application: Application, live: LiveTokens) -> list[str]:
    said = [
        f"Its client id {application.client_id} stops working at once: every sign-in, "
        "token request and refresh with it is refused.",
    ]
    if live.grants:
        said.append(f"{cap(_end(live))}: {_stop(live)}.")
    else:
        said.append("No grant of it works now, so no token stops working.")
    said.append(
        "This cannot be undone: to connect the integration again, register a new application "
        "and give every client its new credentials."
    )
    return said


def regenerate_secret(live: LiveTokens) -> list[str]:
    said = [
        "The current client secret stops working at once: every client using it must be "
        "updated with the new one, which is shown once.",
    ]
    if live.tokens:
        keep = "keeps" if live.tokens == 1 else "keep"
        said.append(
            f"Tokens already issued {keep} working ({tokens(live)}); refreshing them needs "
            "the new secret."
        )
    return said


def change_application(changed: list[str], live: LiveTokens) -> list[str]:
    """``changed``: "scopes", "client type"."""
    return [
        f"Changing its {' and '.join(changed)} revokes every grant of this application: "
        f"{_end(live)} and {_stop(live)}.",
        "Authorization codes not yet exchanged are lost, and people and companies must "
        "authorize it again.",
    ]


def holder(consent: Consent) -> str:
    """Who a grant acts as: "Eve (eve@acme.example)", or the company."""
    if consent.owner.type == "company":
        return consent.company_name
    if consent.user_name and consent.user_email:
        return f"{consent.user_name} ({consent.user_email})"
    return consent.user_email or "a former user"


def revoke_grant(consent: Consent, live: LiveTokens, *, own: bool) -> list[str]:
    """``own``: the person revokes a grant of theirs (said as "you")."""
    kind = "company token" if consent.owner.type == "company" else "user token"
    who = "you" if own else holder(consent)
    acting = "for" if consent.owner.type == "company" else "as"
    again = (
        "An admin must authorize it again"
        if consent.owner.type == "company"
        else ("It must ask you again" if own else "It must ask them again")
    )
    return [
        f"{consent.application_name} can no longer act {acting} {who} with this {kind}: "
        f"{_stop(live)}.",
        f"{again} to regain access.",
    ]


def dialog(said: list[str]) -> str:
    """The confirm step's sentences as one question for the dialog of ``data-confirm``."""
    return " ".join(said)


def cap(text: str) -> str:
    """The sentence's first letter upper-cased."""
    return text[:1].upper() + text[1:]
