"""Housekeeping: removing rows that can never be valid again (``grantly tokens prune``): old
tokens, codes, sessions, invitations, throttle counters, and agent applications nobody
authorized.

A row is prunable once it has been expired, revoked or used for longer than the retention
period. Keeping them that long lets replays of recently used codes and refresh tokens still be
recognised as replays (RFC 6749 §4.1.2, RFC 9700 §4.14.2) rather than as unknown values. Audit
events have a retention of their own (``GRANTLY_AUDIT_RETENTION_DAYS``): they are evidence,
kept for their age, whatever became of what they name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, delete, exists, func, or_, select

from . import tables as t
from .database import Database

# Agent applications cost their authors nothing (an RFC 7591 registration, a client metadata
# document's first use): one never authorized by anyone within this many days is removed.
UNAUTHORIZED_REGISTRATION_DAYS = 30


def prunable(
    cutoff: int, now: int | None = None, audit_cutoff: int | None = None
) -> dict[str, tuple[Table, ColumnElement[bool]]]:
    """What each table may lose. ``cutoff``: the end of the retention period; ``now``: the
    throttle's counters go as soon as their window ended (they are not evidence of anything);
    ``audit_cutoff``: audit events recorded before it go (none without it)."""
    a, r, c, s = t.access_tokens, t.refresh_tokens, t.authorization_codes, t.user_sessions
    i = t.invitations
    tables: dict[str, tuple[Table, ColumnElement[bool]]] = {
        "access_tokens": (
            a,
            or_(
                a.c.expires_at < cutoff,  # NULL (company tokens) never matches
                a.c.revoked_at < cutoff,
            ),
        ),
        "refresh_tokens": (
            r,
            or_(r.c.expires_at < cutoff, r.c.revoked_at < cutoff, r.c.rotated_at < cutoff),
        ),
        # A used code is its grant's anchor (the row every change to the grant's tokens locks
        # first, ``Tokens.lock_family``): kept while a token of the grant can still be used.
        "authorization_codes": (
            c,
            and_(
                c.c.expires_at < cutoff,
                ~exists().where(
                    a.c.family_id == c.c.id,
                    a.c.revoked_at.is_(None),
                    or_(a.c.expires_at.is_(None), a.c.expires_at >= cutoff),
                ),
                ~exists().where(
                    r.c.family_id == c.c.id,
                    r.c.revoked_at.is_(None),
                    r.c.rotated_at.is_(None),
                    r.c.expires_at >= cutoff,
                ),
            ),
        ),
        "user_sessions": (s, s.c.expires_at < cutoff),
        "invitations": (
            i,
            or_(i.c.expires_at < cutoff, i.c.used_at < cutoff, i.c.revoked_at < cutoff),
        ),
        "throttle_counters": (
            t.throttle_counters,
            t.throttle_counters.c.expires_at < (cutoff if now is None else now),
        ),
    }
    if now is not None:
        # Single-use ids and pushed requests are worthless once expired: no retention.
        tables["used_jtis"] = (t.used_jtis, t.used_jtis.c.expires_at < now)
        tables["pushed_requests"] = (
            t.pushed_requests,
            t.pushed_requests.c.expires_at < now,
        )
        apps = t.applications
        tables["unauthorized_agent_applications"] = (
            apps,
            and_(
                apps.c.origin.in_(("registration", "metadata_document")),
                apps.c.authorized_at.is_(None),
                apps.c.created_at < now - UNAUTHORIZED_REGISTRATION_DAYS * 86400,
            ),
        )
    if audit_cutoff is not None:
        tables["audit_events"] = (t.audit_events, t.audit_events.c.created_at < audit_cutoff)
    return tables


async def count(
    db: Database, cutoff: int, now: int | None = None, audit_cutoff: int | None = None
) -> dict[str, int]:
    """Rows each table would lose; a scan, so off the event loop (``long_read``)."""
    counts = {}
    async with db.long_read() as uow:
        for name, (table, condition) in prunable(cutoff, now, audit_cutoff).items():
            counts[name] = int(
                await uow.tx.scalar(select(func.count()).select_from(table).where(condition)) or 0
            )
    return counts


async def prune(
    db: Database,
    cutoff: int,
    batch_size: int,
    on_progress: Callable[[str, int], Any],
    now: int | None = None,
    audit_cutoff: int | None = None,
) -> dict[str, int]:
    """Delete prunable rows in batches, each batch its own short transaction, so that a large
    prune never holds a lock for long; ``on_progress(table, deleted)`` after each batch. Each
    batch's ids are found by a scan outside the write transaction (``long_read``); the DELETE
    re-checks the condition, so a row that became valid again meanwhile is kept."""
    removed: dict[str, int] = {}
    for name, (table, condition) in prunable(cutoff, now, audit_cutoff).items():
        removed[name] = 0
        (key,) = table.primary_key.columns
        while True:
            async with db.long_read() as uow:
                ids = [
                    row[0]
                    for row in await uow.tx.rows(
                        select(key).where(condition).order_by(key).limit(batch_size)
                    )
                ]
            if not ids:
                break
            async with db.unit() as uow:
                deleted = await uow.tx.execute(delete(table).where(key.in_(ids), condition))
            if deleted <= 0:
                break  # nothing of the batch was prunable any more
            removed[name] += deleted
            on_progress(name, deleted)
    return removed
