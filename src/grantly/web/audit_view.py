"""The audit trail's events in words: what the page shows and the exports carry.

A detail is written as phrases ("scope: read write", "confidential: yes"), never as JSON; an
event whose name or detail this module does not know still reads, as its raw name and its
keys with spaces for underscores.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..store.audit import EVENTS, AuditEvent

# The families of events, by their prefix: the filter offers each as a whole too.
FAMILIES = {
    "sign_in": "Sign-ins",
    "user": "People",
    "authorization": "Authorizations",
    "token": "Tokens",
    "grant": "Authorized applications",
    "code": "Authorization codes",
    "refresh_token": "Refresh tokens",
    "client": "Client authentication",
    "application": "Applications",
    "api_key": "API keys",
}

_KEYS = {
    "resource_owner_type": "for",
    "token_type": "token",
    "client_id": "client id",
    "hint": "key",
    "via": "by way of",
    "known_browser": "browser",
}

# Keys that are a fact when true and say nothing when false.
_FLAGS = {
    "grace_retry": "a retry within the grace period",
    "later_failures_unrecorded": (
        "the trail's budget for failed sign-ins is spent: the next ones in these 15 minutes "
        "are counted, not recorded"
    ),
}

_VALUES = {
    "resource_owner_type": {"user": "a person", "company": "the company"},
    "token_type": {"access_token": "access token", "refresh_token": "refresh token"},
    "via": {"cli": "the command line"},
    "known_browser": {"True": "one it signed in with before", "False": "a new one"},
    "limit": {
        "account": "this account, from browsers it was never used on",
        "account_address": "this account, from one address",
        "address": "one address, every account",
        "device": "a browser this account used before",
    },
}


def families() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """The event filter's choices: (family label, the family's value or "", [(name, title)])."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for name, label in EVENTS.items():
        grouped.setdefault(name.split(".", 1)[0], []).append((name, label))
    order = [*FAMILIES, *sorted(set(grouped) - set(FAMILIES))]
    return [
        (
            FAMILIES.get(prefix, prefix),
            f"{prefix}.*" if len(grouped[prefix]) > 1 else "",
            grouped[prefix],
        )
        for prefix in order
        if prefix in grouped
    ]


def details(event: AuditEvent) -> list[str]:
    """The event's detail as phrases a person reads, and where the request came from."""
    phrases = []
    for key, value in event.detail.items():
        if key in _FLAGS:
            if value:
                phrases.append(_FLAGS[key])
            continue
        label = _KEYS.get(key, key.replace("_", " "))
        phrases.append(f"{label}: {_value(key, value)}")
    if event.ip:
        phrases.append(f"from {event.ip}")
    return phrases


def _value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return _VALUES.get(key, {}).get(str(value), "yes" if value else "no")
    if value is None or value == "":
        return "none"
    if isinstance(value, list):
        return ", ".join(_value(key, item) for item in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_value(k, v)}" for k, v in value.items()) or "none"
    text = str(value)
    return _VALUES.get(key, {}).get(text, text)


def iso_time(seconds: int) -> str:
    """``2026-12-03T09:15:02Z``: what ``<time datetime>`` and the exports carry."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_time(seconds: int) -> str:
    """``2026-12-03 09:15:02 UTC``: the page's text, which static/time.js shows in the viewer's
    own time zone and format."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def as_record(event: AuditEvent) -> dict[str, Any]:
    """The event for the JSON export: its detail as recorded, and in words."""
    return {
        "id": event.id,
        "time": iso_time(event.created_at),
        "event": event.event,
        "description": event.title,
        "person": (
            {"id": event.actor_user_id, "name": event.actor_name, "email": event.actor_email}
            if event.actor_user_id is not None
            else None
        ),
        "application": (
            {
                "id": event.application_id,
                "name": event.application_name,
                "deleted": event.application_deleted,
            }
            if event.application_id is not None
            else None
        ),
        "detail": event.detail,
        "details": details(event),
        "ip": event.ip,
    }


CSV_COLUMNS = [
    "id",
    "time_utc",
    "event",
    "description",
    "person_id",
    "person_name",
    "person_email",
    "application_id",
    "application_name",
    "application_deleted",
    "details",
    "ip",
]


def as_csv_row(event: AuditEvent) -> list[str]:
    """The event as a CSV row, every cell safe to open in a spreadsheet."""
    cells: list[Any] = [
        event.id,
        iso_time(event.created_at),
        event.event,
        event.title,
        event.actor_user_id,
        event.actor_name,
        event.actor_email,
        event.application_id,
        event.application_name,
        ("yes" if event.application_deleted else "no") if event.application_id else "",
        "; ".join(details(event)),
        event.ip,
    ]
    return [spreadsheet_safe("" if cell is None else str(cell)) for cell in cells]


def spreadsheet_safe(cell: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula (OWASP's CSV injection): an
    application's or a person's name is anyone's text. A leading quote marks it as text."""
    if cell and cell[0] in "=+-@\t\r":
        return "'" + cell
    return cell
