"""Live monitoring: every prediction recorded in a database, user feedback, and what the log says
(drift against the test set, live accuracy). `log.py` writes off the request path, `schema.py`
holds the tables (migrated by Alembic, `migrations/`), `report.py` reads the log back."""
