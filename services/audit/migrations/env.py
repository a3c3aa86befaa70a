"""Alembic's environment for the audit store. ``services.audit.migrate`` hands in the
connection; the ``alembic`` command line is not needed (nor configured)."""

from __future__ import annotations

from alembic import context

from services.audit.migrate import VERSION_TABLE, include_name, include_object, target_metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=target_metadata(),
    version_table=VERSION_TABLE,
    include_name=include_name,
    include_object=include_object,
    render_as_batch=True,  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
