"""The prediction log: every answer recorded, off the request path.

A request only puts its records on a bounded queue (no waiting, no I/O); one writer
thread hashes the pixels, encodes them as PNG when LOG_IMAGES is on, and inserts in
batches. When the database is slow or down the queue fills and records are dropped and
counted (`monitoring_dropped_total`, a warning once a minute); a prediction never waits
on the database and never fails because of it. The writer also migrates the schema
(Alembic) before its first insert and deletes rows older than MONITORING_RETENTION_DAYS.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import Connection, Engine, create_engine, delete, event, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app import metrics
from training.core.prediction_log import Feedback, Prediction

MIGRATIONS = Path(__file__).parent / "migrations"
BATCH_ROWS = 500  # Most rows in one transaction.
# A batch waits this long for more rows after its first: at hundreds of answers a second that makes one
# transaction of a hundred rows or more instead of one per answer, and one wake-up of the writer thread.
# Each batch costs the writer ~1-2 ms of this process's CPU whatever its size (the driver's round trips in
# Python), each row ~10 us (measured on PostgreSQL; docs/benchmarks.md): fewer, larger batches.
LINGER_SECONDS = 0.25
WARN_EVERY_SECONDS = 60.0
RETENTION_EVERY_SECONDS = 3600.0
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Record:
    """One image's answer as the data plane hands it over (pixels still raw: the writer hashes them)."""

    id: str
    created_at: datetime
    model: str
    version: int
    endpoint: str
    class_index: int
    class_name: str
    probability: float
    latency_ms: float
    pixels: np.ndarray  # uint8, 32 x 32 x 3
    ood_score: float | None = None  # None: the version has no novelty score.
    in_distribution: bool | None = None


class UnknownPrediction(LookupError):
    """No logged prediction has that id."""


class PredictionLog:
    def __init__(
        self, url: str, queue_size: int = 10_000, retention_days: float = 30.0, log_images: bool = False
    ) -> None:
        self.url = url
        self.retention = timedelta(days=retention_days)
        self.log_images = log_images
        self.engine = _engine(url)
        self._queue: queue.Queue[Record | None] = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._write_forever, name="prediction-log", daemon=True)
        self._connection: Connection | None = None  # The writer's own, kept open between batches.
        # What a write can fail with: SQLAlchemy's errors, the network's, and the driver's own, which COPY
        # raises unwrapped (it runs on the driver's cursor).
        self._write_errors = (SQLAlchemyError, OSError, self.engine.dialect.loaded_dbapi.Error)
        self._migrated = False
        self._schema_lock = threading.Lock()  # The writer and the feedback endpoint may both get there first.
        self._last_warning = -WARN_EVERY_SECONDS
        self._last_retention = -RETENTION_EVERY_SECONDS

    # ---- the request path --------------------------------------------------------------------
    def record(self, records: list[Record]) -> None:
        """Queue records for the writer; those that do not fit are dropped and counted, never waited for."""
        for index, item in enumerate(records):
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                self._dropped(len(records) - index, "the queue is full (the database is slow or down)")
                return

    # ---- life ----------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the writer: within `timeout` in all, even with a hung database."""
        deadline = time.monotonic() + timeout
        self.flush(timeout)
        try:
            self._queue.put(None, timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Full:
            return
        self._thread.join(max(deadline - time.monotonic(), 0.01))
        if not self._thread.is_alive():
            self.engine.dispose()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued record is written or dropped; False if that took longer than `timeout`."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    # ---- reads (blocking: the endpoints run them in a worker thread) ------------------------
    def set_feedback(self, prediction_id: str, label: str) -> Prediction:
        """Record the true label of a logged prediction (the latest wins); raises UnknownPrediction."""
        self._ensure_schema()
        with Session(self.engine) as session, session.begin():
            prediction = session.get(Prediction, prediction_id)
            if prediction is None:
                self.flush(2.0)  # It may still be on its way to the database.
                prediction = session.get(Prediction, prediction_id)
            if prediction is None:
                raise UnknownPrediction(f"no logged prediction {prediction_id!r}")
            session.merge(Feedback(prediction_id=prediction_id, label=label, updated_at=datetime.now(UTC)))
            session.expunge(prediction)
            return prediction

    def session(self) -> Session:
        self._ensure_schema()
        return Session(self.engine)

    # ---- the writer thread ---------------------------------------------------------------------
    def _write_forever(self) -> None:
        while True:
            batch = self._next_batch()
            if not batch:
                continue
            records = [item for item in batch if item is not None]
            try:
                if records:
                    self._insert(records)
            except self._write_errors as error:
                self._dropped(len(records), f"the database did not take them ({type(error).__name__}: {error})")
            finally:
                for _ in batch:
                    self._queue.task_done()
            if len(records) < len(batch):  # The stop sentinel.
                self._disconnect(broken=False)
                return
            self._apply_retention()

    def _next_batch(self) -> list[Record | None]:
        """Wait for a first record, let more gather for LINGER_SECONDS, then take them all at once: this thread
        wakes once per batch, not once per record, and each wake-up takes the GIL from the serving threads.
        (Its cost is within this machine's noise either way: docs/benchmarks.md, the prediction log's cost.)"""
        try:
            batch = [self._queue.get(timeout=1.0)]
        except queue.Empty:
            return []
        if batch[0] is not None and self._queue.qsize() < BATCH_ROWS - 1:
            time.sleep(LINGER_SECONDS)
        while len(batch) < BATCH_ROWS and batch[-1] is not None:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _insert(self, records: list[Record]) -> None:
        self._ensure_schema()
        rows = [self._row(item) for item in records]
        reused = self._connection is not None
        try:
            self._write(rows)
        except self._write_errors:
            self._disconnect(broken=True)
            if not reused:
                raise
            self._write(rows)  # The kept connection may have gone stale (the database restarted): once more.
        metrics.MONITORING_LOGGED.inc(len(rows))

    def _write(self, rows: list[dict[str, Any]]) -> None:
        """One transaction on the writer's own connection: taken from the pool once, not per batch (a pool
        checkout pings the server and a return rolls back, two round trips per batch)."""
        if self._connection is None:
            self._connection = self.engine.connect()
        with self._connection.begin():
            if self._connection.dialect.name == "postgresql":
                _copy(self._connection, rows)
            else:  # executemany: sqlite3's own loop, in C.
                self._connection.execute(insert(Prediction), rows)

    def _disconnect(self, broken: bool) -> None:
        """Give the writer's connection up: discarded when it failed, back to the pool when the log stops."""
        if self._connection is not None:
            with contextlib.suppress(*self._write_errors):
                if broken:
                    self._connection.invalidate()
                self._connection.close()
            self._connection = None

    def _row(self, item: Record) -> dict[str, Any]:
        pixels = np.ascontiguousarray(item.pixels, dtype=np.uint8)
        return {
            "id": item.id,
            "created_at": item.created_at,
            "model": item.model,
            "version": item.version,
            "endpoint": item.endpoint,
            "class_index": item.class_index,
            "class_name": item.class_name,
            "probability": item.probability,
            "latency_ms": item.latency_ms,
            "pixels_sha256": hashlib.sha256(pixels.tobytes()).hexdigest(),
            "ood_score": item.ood_score,
            "in_distribution": item.in_distribution,
            "image_png": _png(pixels) if self.log_images else None,
        }

    def _ensure_schema(self) -> None:
        """Bring the database to the newest schema once (again after a failure, as it may have been down)."""
        with self._schema_lock:
            if not self._migrated:
                self._migrate()

    def _migrate(self) -> None:
        # Imported here, where the first write or feedback needs it: importing Alembic costs ~0.13 s,
        # which at module level every start would pay before the service is ready.
        from alembic import command
        from alembic.config import Config

        connected = False
        for attempt in range(2):  # Two processes migrating one database at once: the loser finds it done.
            try:
                with self.engine.begin() as connection:
                    connected = True
                    config = Config()
                    config.set_main_option("script_location", str(MIGRATIONS))
                    config.attributes["connection"] = connection
                    command.upgrade(config, "head")
                break
            except SQLAlchemyError:
                if attempt or not connected:  # A database that refuses connections: no wait for nothing.
                    raise
                time.sleep(0.5)
        self._migrated = True

    def _apply_retention(self) -> None:
        now = time.monotonic()
        if now - self._last_retention < RETENTION_EVERY_SECONDS:
            return
        self._last_retention = now
        try:
            self.delete_older_than(datetime.now(UTC) - self.retention)
        except self._write_errors as error:  # The writer thread must outlive a database that went away.
            logger.warning("prediction log: retention failed (%s)", error)

    def delete_older_than(self, moment: datetime) -> int:
        """Remove predictions (and their feedback) older than `moment`; returns how many predictions went."""
        self._ensure_schema()
        with self.engine.begin() as connection:
            old = select(Prediction.id).where(Prediction.created_at < moment)
            connection.execute(delete(Feedback).where(Feedback.prediction_id.in_(old)))
            removed = connection.execute(delete(Prediction).where(Prediction.created_at < moment)).rowcount
        return int(removed or 0)

    def _dropped(self, count: int, reason: str) -> None:
        metrics.MONITORING_DROPPED.inc(count)
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY_SECONDS:
            self._last_warning = now
            logger.warning("prediction log: dropped %d record(s): %s", count, reason)


def _copy(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Rows into PostgreSQL with one COPY ... FROM STDIN (CSV). The pure-Python driver's executemany sends a
    statement per row, measured at ~290 us of this process's CPU per row (the GIL, shared with the requests);
    COPY is one message per batch."""
    columns = list(rows[0])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([_csv_value(row[column]) for column in columns])
    buffer.seek(0)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(
        f"COPY {Prediction.__tablename__} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", stream=buffer
    )


def _csv_value(value: Any) -> Any:
    """CSV for COPY: NULL is an empty unquoted field, bytea is hex text, times are ISO 8601 with their zone."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _engine(url: str) -> Engine:
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    elif engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _postgres_settings)
    return engine


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    """WAL lets readers (the report) run beside the writer; a busy file is waited for, not an error.
    `synchronous=NORMAL` (SQLite's advice for WAL) syncs at checkpoints, not at every commit: a crash
    of the service loses nothing committed, a power cut at most the last commits, never the file."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _postgres_settings(connection: Any, _: Any) -> None:
    """The log's own sessions commit without waiting for the WAL flush (`synchronous_commit=off`): a crash
    of the database server may lose its last fraction of a second of rows, never consistency; other
    users of the same database keep their own setting. The writer's commits then cost the server less."""
    cursor = connection.cursor()
    cursor.execute("SET synchronous_commit = off")
    cursor.close()


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
