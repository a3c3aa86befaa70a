"""The Merkle block index: the tree head of every complete block of 1,024 records, so that
an inclusion or consistency proof reads a row per block instead of every record's hash (at
5 million records, 4,883 rows instead of 5 million). The blocks of the records already
stored are computed here from their stored hashes; the audit service adds each new one in
the transaction that completes it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


BLOCK = 1024  # blocks.BLOCK when this revision was written


def upgrade() -> None:
    op.create_table(
        "audit_merkle_block",
        sa.Column(
            "block",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("root", sa.String(64), nullable=False),
    )
    _backfill(op.get_bind())


def _backfill(conn: sa.Connection) -> None:
    """The block of every 1,024 records already stored, from their stored hashes (a proof
    made from a wrong one does not check, and `infoshare audit verify` names it)."""
    from services.audit.chain import merkle_root

    block, leaves, rows = 0, [], []
    hashes = conn.execute(sa.text("SELECT entry_hash FROM audit_entry ORDER BY seq"))
    for (entry_hash,) in hashes:
        leaves.append(bytes.fromhex(entry_hash))
        if len(leaves) == BLOCK:
            rows.append({"block": block, "root": merkle_root(leaves).hex()})
            block, leaves = block + 1, []
    if rows:
        conn.execute(
            sa.text("INSERT INTO audit_merkle_block (block, root) VALUES (:block, :root)"), rows
        )


def downgrade() -> None:
    op.drop_table("audit_merkle_block")
