"""Alembic's environment for the prediction log: migrations run inside the service, on the connection
`app.monitoring.log` hands over (`config.attributes["connection"]`), never from a URL in a file."""

from __future__ import annotations

from alembic import context

from training.core.prediction_log import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":  # Replicas starting together: one migrates, the others wait.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(20261201)")
    context.run_migrations()
