"""Aliases remember which agency's record linked them: an agency searching by a child's
other identifier follows only the links its own records made (another agency's link would
tell it something that agency knows, such as which of its children has a plan).

The table is derived from the sealed records, so it is rebuilt from them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _table() -> sa.TableClause:
    return sa.table(
        "audit_subject_alias",
        sa.column("alias_key", sa.String),
        sa.column("subject_key", sa.String),
        sa.column("source_agency", sa.String),
    )


def upgrade() -> None:
    op.drop_table("audit_subject_alias")
    op.create_table(
        "audit_subject_alias",
        sa.Column("alias_key", sa.String(64), nullable=False),
        sa.Column("subject_key", sa.String(64), nullable=False),
        sa.Column("source_agency", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("alias_key", "subject_key", "source_agency"),
    )
    entries = sa.table(
        "audit_entry",
        sa.column("subject_key", sa.String),
        sa.column("source_agency", sa.String),
        sa.column("subject_aliases", sa.JSON),
    )
    found = op.get_bind().execute(
        sa.select(entries.c.subject_key, entries.c.source_agency, entries.c.subject_aliases)
        .where(entries.c.subject_aliases.is_not(None))
        .where(entries.c.subject_key.is_not(None))
    )
    links: set[tuple[str, str, str]] = set()
    for subject_key, agency, aliases in found:
        if isinstance(aliases, str):  # a driver that hands JSON back as text
            aliases = json.loads(aliases)
        links.update((alias, subject_key, agency or "") for alias in aliases or ())
    if links:
        op.bulk_insert(
            _table(),
            [{"alias_key": a, "subject_key": k, "source_agency": s} for a, k, s in sorted(links)],
        )


def downgrade() -> None:
    op.drop_table("audit_subject_alias")
    op.create_table(
        "audit_subject_alias",
        sa.Column("alias_key", sa.String(64), nullable=False),
        sa.Column("subject_key", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("alias_key", "subject_key"),
    )
