"""Alembic's entry for the log database's migrations; the connection comes from
monitoring.database.upgrade, never from a config file."""

from alembic import context

context.configure(connection=context.config.attributes["connection"], render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
