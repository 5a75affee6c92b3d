"""consents: one live consent per application and person (or company)

Two grants at once could each find no consent and insert one (``Consents.record`` selected,
then inserted). Duplicates already made are merged first: the most recently updated one keeps
the union of their scopes, the others are marked revoked (their tokens are untouched).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LIVE_USER_GRANT = "owner_type = 'user' AND revoked_at IS NULL"
LIVE_COMPANY_GRANT = "owner_type = 'company' AND revoked_at IS NULL"


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT id, application_id, owner_type, company_id, user_id, scopes, updated_at "
            "FROM consents WHERE revoked_at IS NULL ORDER BY updated_at DESC, id DESC"
        )
    ).all()
    kept: dict[tuple[object, ...], tuple[int, list[str]]] = {}
    for row in rows:
        key = (row.application_id, row.owner_type, row.company_id)
        if row.owner_type == "user":
            key += (row.user_id,)
        if key not in kept:
            kept[key] = (row.id, row.scopes.split())
            continue
        keeper, scopes = kept[key]
        scopes.extend(s for s in row.scopes.split() if s not in scopes)
        connection.execute(
            sa.text("UPDATE consents SET revoked_at = updated_at WHERE id = :id"), {"id": row.id}
        )
    for keeper, scopes in kept.values():
        connection.execute(
            sa.text("UPDATE consents SET scopes = :scopes WHERE id = :id"),
            {"id": keeper, "scopes": " ".join(scopes)},
        )
    op.create_index(
        "uq_consents_live_user_grant",
        "consents",
        ["application_id", "company_id", "user_id"],
        unique=True,
        sqlite_where=sa.text(LIVE_USER_GRANT),
        postgresql_where=sa.text(LIVE_USER_GRANT),
    )
    op.create_index(
        "uq_consents_live_company_grant",
        "consents",
        ["application_id", "company_id"],
        unique=True,
        sqlite_where=sa.text(LIVE_COMPANY_GRANT),
        postgresql_where=sa.text(LIVE_COMPANY_GRANT),
    )


def downgrade() -> None:
    op.drop_index("uq_consents_live_company_grant", table_name="consents")
    op.drop_index("uq_consents_live_user_grant", table_name="consents")
