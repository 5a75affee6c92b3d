"""invitations: one-time links to set a password; users.password_set_at

People created through the API (and, from now on, by ``grantly users create`` without
``--password``) have no password anyone knows, and had no way to get one. An admin now invites
them: a link, valid 7 days, usable once, kept only as the digest of its token. Ids are never
given twice (AUTOINCREMENT on SQLite, as revision 0007 made the other named tables): the audit
trail names invitations by id.

``users.password_set_at`` tells the People page who can sign in. Earlier rows did not record
it, and a password hash does not tell (the hash of a random secret, for people without one,
looks like any other), so it is filled from what the rows do tell: people whose names came from
the API (``first_name`` is set only there) who are not admins and have no sign-in session are
taken to have no password; everyone else is taken to have one since they were created. A person
taken wrongly to have none is only offered an invitation.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_invitations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_invitations_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("digest", name=op.f("uq_invitations_digest")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_invitations_user_id", "invitations", ["user_id"])

    # ADD COLUMN on both backends: SQLite does not rebuild ``users`` for it.
    op.add_column("users", sa.Column("password_set_at", sa.BigInteger(), nullable=True))
    users = sa.table(
        "users",
        sa.column("id", sa.Integer),
        sa.column("admin", sa.Boolean),
        sa.column("first_name", sa.String),
        sa.column("created_at", sa.BigInteger),
        sa.column("password_set_at", sa.BigInteger),
    )
    sessions = sa.table("user_sessions", sa.column("user_id", sa.Integer))
    op.execute(
        users.update()
        .where(
            sa.or_(
                users.c.first_name.is_(None),
                users.c.admin == sa.true(),
                sa.exists().where(sessions.c.user_id == users.c.id),
            )
        )
        .values(password_set_at=users.c.created_at)
    )


def downgrade() -> None:
    op.drop_index("ix_invitations_user_id", table_name="invitations")
    op.drop_table("invitations")
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_column("users", "password_set_at")
        return
    # SQLite drops a column by rebuilding the table, which would forget the highest id it
    # ever gave (``sqlite_sequence``): kept, as revision 0007 keeps it.
    seq = sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'users'")
    highest = bind.execute(seq).scalar()
    with op.batch_alter_table(
        "users", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.drop_column("password_set_at")
    copied = bind.execute(seq).scalar()  # the highest id copied, if any row was
    highest = max(highest or 0, copied or 0)
    bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'users'"))
    if highest:
        bind.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('users', :seq)"),
            {"seq": highest},
        )
