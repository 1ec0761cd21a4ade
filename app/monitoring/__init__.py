"""Live monitoring: every prediction recorded in a database, user feedback, and what the log says
(drift against the test set, live accuracy). `log.py` writes off the request path, `report.py`
reads the log back; the tables are `training.core.prediction_log` (migrated by Alembic, `migrations/`)."""
