"""Alembic environment; run from `gateway.state.migrate` with a live connection."""

from alembic import context

from gateway.state.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
