"""Tokens that prove themselves (issue 16): per-application token format, DPoP mode, client
authentication method and keys, PAR and grant types; the DPoP key a token is bound to; pushed
authorization requests; single-use JWT ids

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("applications") as batch_op:
        batch_op.add_column(
            sa.Column(
                "access_token_format", sa.String(length=8), nullable=False, server_default="opaque"
            )
        )
        batch_op.add_column(
            sa.Column("dpop", sa.String(length=10), nullable=False, server_default="optional")
        )
        batch_op.add_column(
            sa.Column("token_endpoint_auth_method", sa.String(length=32), nullable=True)
        )
        batch_op.add_column(sa.Column("jwks", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("jwks_uri", sa.String(length=2048), nullable=True))
        batch_op.add_column(
            sa.Column("require_par", sa.Boolean(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("grant_types", sa.String(length=200), nullable=True))
    for table in ("access_tokens", "refresh_tokens"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("jkt", sa.String(length=64), nullable=True))
    op.create_table(
        "pushed_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_pushed_requests_application_id_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pushed_requests")),
        sa.UniqueConstraint("digest", name=op.f("uq_pushed_requests_digest")),
    )
    op.create_index(
        op.f("ix_pushed_requests_expires_at"), "pushed_requests", ["expires_at"], unique=False
    )
    op.create_table(
        "used_jtis",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_used_jtis")),
    )
    op.create_index(op.f("ix_used_jtis_expires_at"), "used_jtis", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_used_jtis_expires_at"), table_name="used_jtis")
    op.drop_table("used_jtis")
    op.drop_index(op.f("ix_pushed_requests_expires_at"), table_name="pushed_requests")
    op.drop_table("pushed_requests")
    for table in ("access_tokens", "refresh_tokens"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("jkt")
    with op.batch_alter_table("applications") as batch_op:
        for column in (
            "grant_types",
            "require_par",
            "jwks_uri",
            "jwks",
            "token_endpoint_auth_method",
            "dpop",
            "access_token_format",
        ):
            batch_op.drop_column(column)
