"""A record may refer to another: an IG officer's review of an override is sealed in the
chain as a record of its own, referring to the decision it reviews (the override_review
table becomes its index). Records sealed before have no reference, and their hashes are as
they were: a null field is left out of a record's canonical bytes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entry") as batch:
        batch.add_column(sa.Column("refers_to", sa.String(36), nullable=True))
        batch.create_index("ix_audit_entry_refers_to", ["refers_to"])


def downgrade() -> None:
    with op.batch_alter_table("audit_entry") as batch:
        batch.drop_index("ix_audit_entry_refers_to")
        batch.drop_column("refers_to")
