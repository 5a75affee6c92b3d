"""What of an application's grants still works, counted by kind: what an action that ends it
stops. The dashboard's confirm steps say it before the action; its notices, the CLI and the
audit trail say what the action stopped, counted from the rows the action itself changed.

A token works while it is not revoked and not expired; a refresh token also while it is not
rotated (company tokens never expire). A grant is an application and its resource owner: a
person (user grants) or a company (company grants, whichever admin gave them), as
``consents._of_owner`` matches them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_

from ..oauth.models import ResourceOwner
from . import tables as t

# An application, the owner type, the company, and the person of a user grant (None for a
# company grant: it belongs to the company, not to the admin who gave it).
GrantKey = tuple[int, str, int, int | None]


@dataclass(frozen=True, slots=True)
class LiveTokens:
    """Tokens that work, and the grants they belong to."""

    access_tokens: int = 0
    refresh_tokens: int = 0
    user_grants: int = 0
    company_grants: int = 0
    latest_issued_at: int | None = None

    @property
    def grants(self) -> int:
        return self.user_grants + self.company_grants

    @property
    def tokens(self) -> int:
        return self.access_tokens + self.refresh_tokens

    def as_json(self) -> dict[str, int]:
        return {
            "access_tokens": self.access_tokens,
            "refresh_tokens": self.refresh_tokens,
            "user_grants": self.user_grants,
            "company_grants": self.company_grants,
        }


NOTHING = LiveTokens()


def key_of(application_id: int, owner_type: str, company_id: int, user_id: int | None) -> GrantKey:
    return (application_id, owner_type, company_id, user_id if owner_type == "user" else None)


def grant_key(application_id: int, owner: ResourceOwner) -> GrantKey:
    return key_of(application_id, owner.type, owner.company_id, owner.user_id)


def _row_key(row: Any) -> GrantKey:
    return key_of(row.application_id, row.owner_type, row.company_id, row.user_id)


def live_access(now: int) -> Any:
    a = t.access_tokens
    return and_(a.c.revoked_at.is_(None), a.c.expires_at.is_(None) | (a.c.expires_at > now))


def live_refresh(now: int) -> Any:
    r = t.refresh_tokens
    return and_(r.c.revoked_at.is_(None), r.c.rotated_at.is_(None), r.c.expires_at > now)


def ended_columns(table: Any) -> list[Any]:
    """What an UPDATE or DELETE that ends tokens of ``table`` returns for ``stopped``."""
    names = ["application_id", "owner_type", "company_id", "user_id", "expires_at"]
    if table is t.refresh_tokens:
        names.append("rotated_at")
    return [table.c[name] for name in names]


def by_grant(
    access: Iterable[tuple[GrantKey, int, int | None]],
    refresh: Iterable[tuple[GrantKey, int, int | None]],
) -> dict[GrantKey, LiveTokens]:
    """Counts of live tokens ``(grant, how many, latest created_at)`` of each table, per grant."""
    counts: dict[GrantKey, list[int]] = {}
    latest: dict[GrantKey, int] = {}
    for index, found in enumerate((access, refresh)):
        for key, count, created in found:
            counts.setdefault(key, [0, 0])[index] += count
            if created is not None:
                latest[key] = max(created, latest.get(key, created))
    return {
        key: LiveTokens(
            access_tokens=access_count,
            refresh_tokens=refresh_count,
            user_grants=1 if key[1] == "user" else 0,
            company_grants=0 if key[1] == "user" else 1,
            latest_issued_at=latest.get(key),
        )
        for key, (access_count, refresh_count) in counts.items()
    }


def total(grants: Iterable[LiveTokens]) -> LiveTokens:
    """Many grants' counts as one."""
    access = refresh = users = companies = 0
    latest: int | None = None
    for grant in grants:
        access += grant.access_tokens
        refresh += grant.refresh_tokens
        users += grant.user_grants
        companies += grant.company_grants
        if grant.latest_issued_at is not None:
            latest = max(grant.latest_issued_at, latest or grant.latest_issued_at)
    return LiveTokens(access, refresh, users, companies, latest)


def stopped(access_rows: Iterable[Any], refresh_rows: Iterable[Any], now: int) -> LiveTokens:
    """What an UPDATE or DELETE that ended tokens stopped, from the rows it returned
    (``ended_columns``, and ``revoked_at`` for a DELETE): only those that still worked count,
    not the expired, rotated or revoked ones it also reached."""

    def live(rows: Iterable[Any], refresh: bool) -> list[tuple[GrantKey, int, int | None]]:
        return [
            (_row_key(row), 1, None)
            for row in rows
            if (row.expires_at is None or row.expires_at > now)
            and getattr(row, "revoked_at", None) is None
            and not (refresh and row.rotated_at is not None)
        ]

    return total(by_grant(live(access_rows, False), live(refresh_rows, True)).values())
