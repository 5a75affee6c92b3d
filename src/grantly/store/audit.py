"""The audit trail of security events, for a company's admins.

An event names what happened (``token.issued``, ``application.deleted`` …), the company, who
did it and to which application, with a small JSON detail. Nothing secret is ever written:
callers pass ids, names, scopes and kinds, and ``record`` refuses detail keys that could hold a
credential.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from . import tables as t
from .sql import Query
from .transaction import Transaction

EVENTS = {
    "authorization.granted": "Authorization granted",
    "authorization.denied": "Authorization denied",
    "token.issued": "Token issued",
    "token.refreshed": "Token refreshed",
    "token.revoked": "Token revoked",
    "grant.revoked": "Authorized application revoked",
    "code.replayed": "Authorization code replayed (tokens revoked)",
    "refresh_token.reused": "Refresh token reused (grant revoked)",
    "client.authentication_failed": "Client authentication failed",
    "client.authentication_throttled": "Client authentication throttled (address failed often)",
    "sign_in.succeeded": "Signed in",
    "sign_in.failed": "Sign-in failed",
    "sign_in.throttled": "Sign-in throttled (too many failed attempts)",
    "application.created": "Application created",
    "application.updated": "Application changed",
    "application.deleted": "Application deleted",
    "application.secret_regenerated": "Client secret regenerated",
    "api_key.created": "API key created",
    "api_key.revoked": "API key revoked",
}

# Events that record the application's name in their detail.
APPLICATION_EVENTS = [
    "application.created",
    "application.updated",
    "application.deleted",
    "application.secret_regenerated",
]

_FORBIDDEN_KEYS = {
    "token",
    "access_token",
    "refresh_token",
    "code",
    "secret",
    "client_secret",
    "password",
    "key",
    "api_key",
    "code_verifier",
}


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    event: str
    title: str
    actor_email: str | None
    application_id: int | None
    # The application's name when the event recorded it (as it was then), else its name now,
    # else, once it is deleted, the last name the trail recorded for it.
    application_name: str | None
    application_deleted: bool
    detail: dict[str, Any]
    ip: str | None
    created_at: int


# Every token request records an event.
_INSERT = Query(insert(t.audit_events))


class AuditLog:
    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def record(
        self,
        event: str,
        *,
        company_id: int | None,
        now: int,
        actor_user_id: int | None = None,
        application_id: int | None = None,
        ip: str | None = None,
        **detail: Any,
    ) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown audit event {event!r}")
        leaked = _FORBIDDEN_KEYS & set(detail)
        if leaked:
            raise ValueError(f"audit detail may not carry {sorted(leaked)}")
        # Queued: a request's audit event is its last write, sent with its tokens (if any)
        # before COMMIT.
        self.tx.insert_later(
            _INSERT,
            {
                "event": event,
                "company_id": company_id,
                "actor_user_id": actor_user_id,
                "application_id": application_id,
                "detail": json.dumps(detail, sort_keys=True),
                "ip": ip,
                "created_at": now,
            },
        )

    async def recent(self, company_id: int, limit: int = 100) -> list[AuditEvent]:
        e, u, a = t.audit_events, t.users, t.applications
        rows = await self.tx.rows(
            select(e, u.c.email.label("actor_email"), a.c.name.label("application_name"))
            .outerjoin(u, u.c.id == e.c.actor_user_id)
            .outerjoin(a, (a.c.id == e.c.application_id) & (a.c.company_id == e.c.company_id))
            .where(e.c.company_id == company_id)
            .order_by(e.c.created_at.desc(), e.c.id.desc())
            .limit(limit)
        )
        gone = {r.application_id for r in rows if r.application_id and r.application_name is None}
        last_names = await self._last_recorded_names(company_id, gone) if gone else {}
        events = []
        for row in rows:
            detail = json.loads(row.detail)
            recorded = detail.get("name") if row.event.startswith("application.") else None
            deleted = bool(row.application_id) and row.application_name is None
            events.append(
                AuditEvent(
                    id=row.id,
                    event=row.event,
                    title=EVENTS.get(row.event, row.event),
                    actor_email=row.actor_email,
                    application_id=row.application_id,
                    application_name=(
                        recorded or row.application_name or last_names.get(row.application_id)
                    ),
                    application_deleted=deleted,
                    detail=detail,
                    ip=row.ip,
                    created_at=row.created_at,
                )
            )
        return events

    async def _last_recorded_names(self, company_id: int, ids: set[int]) -> dict[int, str]:
        """The last name the trail recorded for each of these (deleted) applications."""
        e = t.audit_events
        rows = await self.tx.rows(
            select(e.c.application_id, e.c.detail)
            .where(
                e.c.company_id == company_id,
                e.c.application_id.in_(sorted(ids)),
                e.c.event.in_(APPLICATION_EVENTS),
            )
            .order_by(e.c.created_at, e.c.id)
        )
        names: dict[int, str] = {}
        for row in rows:
            name = json.loads(row.detail).get("name")
            if isinstance(name, str):
                names[row.application_id] = name
        return names
