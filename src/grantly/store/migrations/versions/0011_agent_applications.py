"""Agent applications: clients that registered themselves (RFC 7591) or are named by a client
metadata document URL, belong to no company; companies' policy towards them; initial access
tokens for registration

``applications.company_id`` becomes nullable (an agent application belongs to no company) and
``client_id`` takes a URL (a client metadata document's client_id is the document's https
URL). ``origin`` says where an application came from: ``dashboard`` (every existing row),
``registration`` (RFC 7591) or ``metadata_document``. ``registration_digest`` is the digest of
the RFC 7592 registration access token; ``client_metadata`` the JSON metadata the client
registered or published; ``metadata_expires_at`` when a fetched document must be fetched again;
``authorized_at`` when a person last authorized it (``tokens prune`` removes registrations never
authorized).

``companies.agent_applications`` is ``allow`` or ``block``; ``company_application_blocks`` are
the clients one company blocked. ``registration_tokens`` are the initial access tokens
(RFC 7591 §3) an operator mints, kept as digests.

SQLite cannot make a column nullable in place, so ``applications`` is rebuilt (copy, drop,
rename); the highest id it ever used is kept in ``sqlite_sequence`` (migration 0007), so no id
is handed out twice.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-11
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _sequence(bind: sa.engine.Connection) -> int | None:
    if bind.dialect.name != "sqlite":
        return None
    return bind.execute(
        sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'applications'")
    ).scalar_one_or_none()


def _restore_sequence(bind: sa.engine.Connection, seq: int | None) -> None:
    if bind.dialect.name != "sqlite" or seq is None:
        return
    bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'applications'"))
    bind.execute(
        sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('applications', :seq)"),
        {"seq": seq},
    )


def upgrade() -> None:
    bind = op.get_bind()
    seq = _sequence(bind)
    with op.batch_alter_table(
        "applications", recreate="auto", table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.alter_column("company_id", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column(
            "client_id", existing_type=sa.String(length=64), type_=sa.String(length=2048)
        )
        batch_op.add_column(
            sa.Column("origin", sa.String(length=24), nullable=False, server_default="dashboard")
        )
        batch_op.add_column(sa.Column("registration_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("client_metadata", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("metadata_expires_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("authorized_at", sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint(
            op.f("uq_applications_registration_digest"), ["registration_digest"]
        )
        batch_op.create_index("ix_applications_origin", ["origin", "created_at"])
    _restore_sequence(bind, seq)

    op.add_column(
        "companies",
        sa.Column(
            "agent_applications", sa.String(length=8), nullable=False, server_default="allow"
        ),
    )
    op.create_table(
        "company_application_blocks",
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("blocked_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_company_application_blocks_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_company_application_blocks_application_id_applications"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["blocked_by"],
            ["users.id"],
            name=op.f("fk_company_application_blocks_blocked_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint(
            "company_id", "application_id", name=op.f("pk_company_application_blocks")
        ),
    )
    op.create_table(
        "registration_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration_tokens")),
        sa.UniqueConstraint("digest", name=op.f("uq_registration_tokens_digest")),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    bind = op.get_bind()
    op.drop_table("registration_tokens")
    op.drop_table("company_application_blocks")
    with op.batch_alter_table("companies") as batch_op:
        batch_op.drop_column("agent_applications")
    # Agent applications have no company to fall back to: they go, with their grants.
    bind.execute(sa.text("DELETE FROM applications WHERE company_id IS NULL"))
    seq = _sequence(bind)
    with op.batch_alter_table(
        "applications", recreate="auto", table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.drop_index("ix_applications_origin")
        batch_op.drop_constraint(op.f("uq_applications_registration_digest"), type_="unique")
        for column in (
            "authorized_at",
            "metadata_expires_at",
            "client_metadata",
            "registration_digest",
            "origin",
        ):
            batch_op.drop_column(column)
        batch_op.alter_column(
            "client_id", existing_type=sa.String(length=2048), type_=sa.String(length=64)
        )
        batch_op.alter_column("company_id", existing_type=sa.Integer(), nullable=False)
    _restore_sequence(bind, seq)
