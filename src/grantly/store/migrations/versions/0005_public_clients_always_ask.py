"""applications: public applications ask for consent every time

A public application (no client secret) with consent "remember" or "trusted" handed a code to
any local program that claimed its client id, without asking anyone (RFC 8252 §8.6).
Registration now refuses those modes for public applications; rows made before are set to
"always".

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE applications SET consent = 'always' "
            "WHERE confidential = :public AND consent <> 'always'"
        ).bindparams(public=False)
    )


def downgrade() -> None:
    """Nothing to undo: which rows had another mode is not kept, and "always" is valid."""
