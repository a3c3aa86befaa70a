"""An IG officer's review of an override says its outcome (justified, not justified, or
followed up) beside the note. Reviews made before have none, and keep none: the sealed
review records say what they said.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("override_review") as batch:
        batch.add_column(sa.Column("outcome", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("override_review") as batch:
        batch.drop_column("outcome")
