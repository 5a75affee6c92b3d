"""companies, users, applications, api_keys: an id is never given twice (SQLite)

SQLite gives a plain INTEGER PRIMARY KEY the highest id plus one, so deleting the newest
application handed its id to the next one, and the audit trail (and any old link) then named
the wrong application. AUTOINCREMENT tables remember the highest id ever used in
``sqlite_sequence``. SQLite cannot add AUTOINCREMENT to a table in place, so each table is
rebuilt (copy, drop, rename: https://www.sqlite.org/lang_altertable.html#otheralter). env.py
runs SQLite migrations with foreign keys off, so dropping the old table runs none of the
ON DELETE actions that point at it, and checks every reference before committing.

The highest id ever used is not always still in the table: ids of applications deleted before
this revision are in the audit trail, managers' ids in ``users.manager_id``. The sequences
start above those, so no id named anywhere is handed out again.

PostgreSQL needs nothing: its sequences never hand out a number twice.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Each table, with the columns that name its rows without a foreign key (those outlive the row
# they name).
TABLES = {
    "companies": [("companies", "id")],
    "users": [("users", "id"), ("users", "manager_id")],
    "applications": [("applications", "id"), ("audit_events", "application_id")],
    "api_keys": [("api_keys", "id")],
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for table, columns in TABLES.items():
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass
        highest = max(
            bind.execute(
                sa.select(sa.func.coalesce(sa.func.max(sa.column(column)), 0)).select_from(
                    sa.table(source)
                )
            ).scalar_one()
            for source, column in columns
        )
        # Copying the rows recorded their highest id; an empty table has no row here yet.
        bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :t"), {"t": table})
        if highest:
            bind.execute(
                sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :seq)"),
                {"t": table, "seq": highest},
            )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ):
            pass
    bind.execute(
        sa.text("DELETE FROM sqlite_sequence WHERE name IN :tables").bindparams(
            sa.bindparam("tables", expanding=True)
        ),
        {"tables": list(TABLES)},
    )
