"""Checkpoints keep their Merkle compact range: the next one hashes only what is new.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_checkpoint") as batch:
        batch.add_column(sa.Column("peaks", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_checkpoint") as batch:
        batch.drop_column("peaks")
