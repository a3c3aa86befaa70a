"""The audit trail: sealed records, signed checkpoints, override reviews.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def _text(name: str, length: int | None = None, *, nullable: bool = True) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "audit_entry",
        _text("audit_id", 36, nullable=False),
        sa.Column("recorded_at", WHEN, nullable=False),
        sa.Column("occurred_at", WHEN, nullable=True),
        _text("action", 32, nullable=False),
        _text("decision", 32, nullable=False),
        _text("reason_code", 64, nullable=False),
        _text("reason", nullable=False),
        _text("actor", 128, nullable=False),
        _text("event_id", 64),
        _text("event_type", 128),
        _text("source_agency", 64),
        _text("recipient", 64),
        _text("purpose", 64),
        _text("protocol_id", 128),
        sa.Column("protocol_version", sa.Integer(), nullable=True),
        _text("lawful_basis"),
        _text("identity_level", 32),
        _text("subject_key", 64),
        *(
            sa.Column(f"fields_{kind}", sa.JSON(), nullable=True)
            for kind in ("disclosed", "pseudonymised", "withheld", "tokenised", "encrypted")
        ),
        _text("key_id", 128),
        _text("token_key_id", 128),
        _text("consent_record_id", 64),
        sa.Column("consent_version", sa.Integer(), nullable=True),
        _text("override_justification"),
        _text("override_role", 80),
        _text("topic_in", 255),
        sa.Column("partition_in", sa.Integer(), nullable=True),
        sa.Column("offset_in", BIG, nullable=True),
        _text("topic_out", 255),
        _text("delivery_id", 64),
        _text("trace_id", 32),
        sa.Column("seq", BIG, autoincrement=False, nullable=False),
        _text("entry_hash", 64, nullable=False),
        _text("chain_hash", 64, nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_audit_entry_audit_id", "audit_entry", ["audit_id"], unique=True)
    for column in ("decision", "event_id", "recorded_at", "recipient", "source_agency"):
        op.create_index(f"ix_audit_entry_{column}", "audit_entry", [column])
    op.create_index("ix_audit_entry_subject_key", "audit_entry", ["subject_key"])
    op.create_table(
        "audit_checkpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tree_size", BIG, nullable=False),
        _text("root", 64, nullable=False),
        _text("chain_head", 64, nullable=False),
        _text("created_at", 40, nullable=False),
        _text("key_id", 128, nullable=False),
        _text("signature", 128, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_checkpoint_tree_size", "audit_checkpoint", ["tree_size"])
    op.create_table(
        "override_review",
        _text("note", 4000, nullable=False),
        _text("reviewer", nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        _text("audit_id", 36, nullable=False),
        sa.Column("reviewed_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_override_review_audit_id", "override_review", ["audit_id"], unique=True)


def downgrade() -> None:
    op.drop_table("override_review")
    op.drop_table("audit_checkpoint")
    op.drop_table("audit_entry")
