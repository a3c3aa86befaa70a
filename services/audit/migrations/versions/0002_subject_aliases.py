"""A child's other identifiers: search the trail by UPN or LA person id.

Records carry ``subject_aliases`` (the UPN and LA person id, keyed like the subject key);
``audit_subject_alias`` maps each to the subject key the decisions are stored under. Records
sealed before this revision hash as they did: an absent list and an empty one hash alike.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entry") as batch:
        batch.add_column(sa.Column("subject_aliases", sa.JSON(), nullable=True))
    op.create_table(
        "audit_subject_alias",
        sa.Column("alias_key", sa.String(64), nullable=False),
        sa.Column("subject_key", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("alias_key", "subject_key"),
    )


def downgrade() -> None:
    op.drop_table("audit_subject_alias")
    with op.batch_alter_table("audit_entry") as batch:
        batch.drop_column("subject_aliases")
