"""resource_servers, and the audience of codes and tokens (RFC 8707 resource indicators)

Resource servers other than Grantly's own API are registered by the operator; each has the
credentials it introspects with (the secret as a digest). Their ids are never given twice on
SQLite (AUTOINCREMENT, as migration 0007 made the other tables that are named by id).

Codes, access tokens and refresh tokens get an ``audience``: NULL means Grantly's own API, which
is what every existing row was issued for, so nothing is rewritten.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

AUDIENCE_TABLES = ("authorization_codes", "access_tokens", "refresh_tokens")


def upgrade() -> None:
    op.create_table(
        "resource_servers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uri", sa.String(length=2000), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("scopes", sa.String(length=1000), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("secret_digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resource_servers")),
        sa.UniqueConstraint("client_id", name=op.f("uq_resource_servers_client_id")),
        sa.UniqueConstraint("uri", name=op.f("uq_resource_servers_uri")),
        sqlite_autoincrement=True,
    )
    for table in AUDIENCE_TABLES:
        # A nullable column: SQLite adds it in place, without rebuilding the table.
        op.add_column(table, sa.Column("audience", sa.Text(), nullable=True))


def downgrade() -> None:
    for table in AUDIENCE_TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("audience")
    op.drop_table("resource_servers")
