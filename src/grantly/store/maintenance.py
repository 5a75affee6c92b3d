"""Housekeeping: removing rows that can never be valid again (``grantly tokens prune``).

A row is prunable once it has been expired, revoked or used for longer than the retention
period. Keeping them that long lets replays of recently used codes and refresh tokens still be
recognised as replays (RFC 6749 §4.1.2, RFC 9700 §4.14.2) rather than as unknown values.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from . import tables as t


def prunable(cutoff: int) -> dict[str, tuple[Table, ColumnElement[bool]]]:
    a, r, c, s = t.access_tokens, t.refresh_tokens, t.authorization_codes, t.user_sessions
    return {
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
        "authorization_codes": (c, c.c.expires_at < cutoff),
        "user_sessions": (s, s.c.expires_at < cutoff),
    }


async def count(connection: AsyncConnection, cutoff: int) -> dict[str, int]:
    counts = {}
    for name, (table, condition) in prunable(cutoff).items():
        counts[name] = int(
            await connection.scalar(select(func.count()).select_from(table).where(condition)) or 0
        )
    return counts


async def prune(
    run_batch: Callable[[Callable[[AsyncConnection], Awaitable[int]]], Awaitable[int]],
    cutoff: int,
    batch_size: int,
    on_progress: Callable[[str, int], Any],
) -> dict[str, int]:
    """Delete prunable rows in batches, each batch its own short transaction, so that a large
    prune never holds a lock for long; ``on_progress(table, deleted)`` after each batch."""
    removed: dict[str, int] = {}
    for name, (table, condition) in prunable(cutoff).items():
        removed[name] = 0

        async def one_batch(
            connection: AsyncConnection,
            table: Table = table,
            condition: ColumnElement[bool] = condition,
        ) -> int:
            ids = (
                await connection.scalars(
                    select(table.c.id).where(condition).order_by(table.c.id).limit(batch_size)
                )
            ).all()
            if ids:
                await connection.execute(delete(table).where(table.c.id.in_(ids)))
            return len(ids)

        while True:
            deleted = await run_batch(one_batch)
            if not deleted:
                break
            removed[name] += deleted
            on_progress(name, deleted)
    return removed
