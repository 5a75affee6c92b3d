"""The audit trail of security events, for a company's admins.

An event names what happened (``token.issued``, ``application.deleted`` …), the company, who
did it and to which application, with a small JSON detail. Nothing secret is ever written:
callers pass ids, names, scopes and kinds, and ``record`` refuses detail keys that could hold a
credential.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, insert, or_, select

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
    "application.registered": "Agent application registered itself (RFC 7591)",
    "application.registration_updated": "Agent application changed its registration",
    "application.registration_deleted": "Agent application deleted its registration",
    "agent_application.blocked": "Agent application blocked for the company",
    "agent_application.unblocked": "Agent application unblocked for the company",
    "agent_application.revoked": "Agent application's grants in the company revoked",
    "company.agent_policy_changed": "Agent applications allowed or blocked for the company",
    "api_key.created": "API key created",
    "api_key.revoked": "API key revoked",
    "user.created": "Person added",
    "user.invited": "Person invited (a link to set a password)",
    "user.password_set": "Password set with an invitation link",
    "user.password_changed": "Password changed",
    "user.deactivated": "Person deactivated",
    "user.activated": "Person reactivated",
}

# Events that record the application's name in their detail.
APPLICATION_EVENTS = [
    "application.created",
    "application.updated",
    "application.deleted",
    "application.secret_regenerated",
    "application.registered",
    "application.registration_deleted",
    "agent_application.blocked",
    "agent_application.unblocked",
    "agent_application.revoked",
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
    actor_user_id: int | None
    actor_name: str | None
    actor_email: str | None
    application_id: int | None
    # The application's name now, or once it is deleted the name the event recorded (as it
    # was then), else the last name the trail recorded for it; None if it never recorded one.
    application_name: str | None
    application_deleted: bool
    detail: dict[str, Any]
    ip: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which of a company's events to list: each field that is set narrows the list."""

    # An event name, or a family of them as its prefix and ``*``: ``sign_in.*``.
    event: str | None = None
    actor_user_id: int | None = None
    application_id: int | None = None
    since: int | None = None  # created_at >= since
    until: int | None = None  # created_at < until


# Where an event sits in the trail's order (newest first, the later id first at one second).
Position = tuple[int, int]  # (created_at, id)


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: list[AuditEvent]
    newer: int | None  # the id to ask ``after`` for the page before this one, if there is one
    older: int | None  # the id to ask ``before`` for the page after this one, if there is one


def family(pattern: str) -> list[str]:
    """The event names ``pattern`` stands for: itself, or every known name under its prefix."""
    if pattern.endswith(".*"):
        prefix = pattern[:-1]
        return [name for name in EVENTS if name.startswith(prefix)]
    return [pattern]


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

    async def position(self, company_id: int, event_id: int) -> Position | None:
        """Where one of the company's events sits in the order, or None (another company's,
        or pruned): the anchor of a page."""
        e = t.audit_events
        row = await self.tx.first(
            select(e.c.created_at, e.c.id).where(e.c.id == event_id, e.c.company_id == company_id)
        )
        return (row.created_at, row.id) if row else None

    async def page(
        self,
        company_id: int,
        query: AuditQuery,
        *,
        size: int,
        before: int | None = None,
        after: int | None = None,
    ) -> AuditPage | None:
        """A page of the events that match, newest first: the newest ones, or those just
        older than the event ``before``, or just newer than the event ``after``. Keyset pages,
        so that events recorded meanwhile shift nothing. None when the anchor is not one of
        the company's events (any more)."""
        anchor_id = before if before is not None else after
        anchor = await self.position(company_id, anchor_id) if anchor_id is not None else None
        if anchor_id is not None and anchor is None:
            return None
        if after is not None:
            rows = await self.tx.rows(
                self._matching(company_id, query, newer_than=anchor).limit(size + 1)
            )
            more_newer, rows = len(rows) > size, rows[:size]
            rows.reverse()
            newer = rows[0].id if more_newer else None
            older = rows[-1].id if rows and await self._any(company_id, query, rows[-1]) else None
        else:
            rows = await self.tx.rows(
                self._matching(company_id, query, older_than=anchor).limit(size + 1)
            )
            more_older, rows = len(rows) > size, rows[:size]
            older = rows[-1].id if more_older else None
            newer = None
            if anchor is not None and rows:
                newer = (
                    rows[0].id if await self._any(company_id, query, rows[0], newer=True) else None
                )
        return AuditPage(await self._events(company_id, rows), newer, older)

    async def batch(
        self, company_id: int, query: AuditQuery, older_than: Position | None, size: int
    ) -> list[AuditEvent]:
        """Up to ``size`` events that match, newest first, older than ``older_than``: an export
        walks the whole filtered set this way, one bounded read at a time."""
        rows = await self.tx.rows(
            self._matching(company_id, query, older_than=older_than).limit(size)
        )
        return await self._events(company_id, rows)

    async def count(self, company_id: int, query: AuditQuery, limit: int) -> int:
        """How many events match, counting no further than ``limit``: a count is a scan of the
        matching rows, and a page needs no more than "10,000 or more"."""
        e = t.audit_events
        matching = select(e.c.id).where(*self._conditions(company_id, query)).limit(limit)
        return int(await self.tx.scalar(select(func.count()).select_from(matching.subquery())))

    def _conditions(self, company_id: int, query: AuditQuery) -> list[ColumnElement[bool]]:
        e = t.audit_events
        conditions = [e.c.company_id == company_id]
        if query.event is not None:
            # A family is its known names (an IN list), not a LIKE on the prefix: an index on
            # the event column serves an IN list under any collation.
            names = family(query.event)
            conditions.append(e.c.event == names[0] if len(names) == 1 else e.c.event.in_(names))
        if query.actor_user_id is not None:
            conditions.append(e.c.actor_user_id == query.actor_user_id)
        if query.application_id is not None:
            conditions.append(e.c.application_id == query.application_id)
        if query.since is not None:
            conditions.append(e.c.created_at >= query.since)
        if query.until is not None:
            conditions.append(e.c.created_at < query.until)
        return conditions

    def _matching(
        self,
        company_id: int,
        query: AuditQuery,
        *,
        older_than: Position | None = None,
        newer_than: Position | None = None,
    ) -> Select[Any]:
        """The matching events with their person and live application, in the trail's order
        (newest first), or oldest first after ``newer_than``."""
        e, u, a = t.audit_events, t.users, t.applications
        statement = (
            select(
                e,
                u.c.name.label("actor_name"),
                u.c.email.label("actor_email"),
                a.c.name.label("live_application_name"),
            )
            .outerjoin(u, u.c.id == e.c.actor_user_id)
            .outerjoin(a, (a.c.id == e.c.application_id) & (a.c.company_id == e.c.company_id))
            .where(*self._conditions(company_id, query))
        )
        if newer_than is not None:
            return statement.where(_after(newer_than)).order_by(e.c.created_at, e.c.id)
        if older_than is not None:
            statement = statement.where(_before(older_than))
        return statement.order_by(e.c.created_at.desc(), e.c.id.desc())

    async def _any(self, company_id: int, query: AuditQuery, row: Any, newer: bool = False) -> bool:
        """Whether an event that matches is older (or ``newer``) than ``row``."""
        e = t.audit_events
        beyond = (_after if newer else _before)((row.created_at, row.id))
        found = await self.tx.first(
            select(e.c.id).where(*self._conditions(company_id, query), beyond).limit(1)
        )
        return found is not None

    async def _events(self, company_id: int, rows: Sequence[Any]) -> list[AuditEvent]:
        gone = {
            r.application_id for r in rows if r.application_id and r.live_application_name is None
        }
        last_names = await self._last_recorded_names(company_id, gone) if gone else {}
        events = []
        for row in rows:
            detail = json.loads(row.detail)
            recorded = detail.get("name") if row.event in APPLICATION_EVENTS else None
            deleted = bool(row.application_id) and row.live_application_name is None
            events.append(
                AuditEvent(
                    id=row.id,
                    event=row.event,
                    title=EVENTS.get(row.event, row.event),
                    actor_user_id=row.actor_user_id,
                    actor_name=row.actor_name,
                    actor_email=row.actor_email,
                    application_id=row.application_id,
                    application_name=(
                        row.live_application_name
                        or (recorded if isinstance(recorded, str) else None)
                        or last_names.get(row.application_id)
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


def _before(position: Position) -> ColumnElement[bool]:
    """Later in the trail's order (older) than ``position``. The first term repeats what the
    second implies so that an index on ``created_at`` bounds the scan."""
    e = t.audit_events
    at, event_id = position
    return and_(
        e.c.created_at <= at,
        or_(e.c.created_at < at, and_(e.c.created_at == at, e.c.id < event_id)),
    )


def _after(position: Position) -> ColumnElement[bool]:
    """Earlier in the trail's order (newer) than ``position``."""
    e = t.audit_events
    at, event_id = position
    return and_(
        e.c.created_at >= at,
        or_(e.c.created_at > at, and_(e.c.created_at == at, e.c.id > event_id)),
    )
