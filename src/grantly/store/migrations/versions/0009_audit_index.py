"""audit_events: an index per filter of the audit trail

The trail's page filters a company's events by event type, person or application, newest
first. With only the (company, time) index each filter scanned the company's whole trail,
every token request's event included, to find a page of rare events and to count them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_audit_events_company_id_event": ["company_id", "event", "created_at"],
    "ix_audit_events_company_id_actor": ["company_id", "actor_user_id", "created_at"],
    "ix_audit_events_company_id_application": ["company_id", "application_id", "created_at"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "audit_events", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="audit_events")
