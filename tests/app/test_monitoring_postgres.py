"""The prediction log on a real PostgreSQL server: rows, feedback and the report; the server stopped
in the middle of traffic (every request still answered, the drops counted, logging back once it
returns); and two worker processes plus a second replica sharing one log."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import create_engine, func, select, text

from tests.utils.data import COMMITTED_MODELS, SAMPLES
from tests.utils.postgres import Postgres, postgres_server
from tests.utils.servers import running_client, server_process
from training.core.prediction_log import Prediction

pytestmark = pytest.mark.slow
PNG = (SAMPLES / "test_00000_cat.png").read_bytes()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server


def logged_ids(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return set(connection.scalars(select(Prediction.id)))
    finally:
        engine.dispose()


def test_rows_feedback_and_the_report_on_postgres(postgres: Postgres) -> None:
    with running_client(COMMITTED_MODELS, monitoring_db=postgres.url, log_images=True) as client:
        ids = [client.post("/predict", files={"file": ("a.png", PNG)}).json()["prediction_id"] for _ in range(1000)]
        feedback = client.post("/feedback", json={"prediction_id": ids[0], "label": "cat"})
        client.app.state.dataplane.log.flush(60)  # type: ignore[attr-defined]
        report = client.get("/monitoring").json()
    assert feedback.status_code == 200
    assert set(ids) <= logged_ids(postgres.url)  # Every prediction has its row: none lost.
    engine = create_engine(postgres.url)
    with engine.connect() as connection:  # Written by COPY: the image, the hash and the time come back intact.
        row = connection.execute(select(Prediction).where(Prediction.id == ids[0])).one()
    engine.dispose()
    pixels = np.asarray(Image.open(io.BytesIO(row.image_png)))
    np.testing.assert_array_equal(pixels, np.asarray(Image.open(io.BytesIO(PNG)).convert("RGB")))
    assert row.pixels_sha256 == hashlib.sha256(pixels.tobytes()).hexdigest()
    assert abs((datetime.now(UTC) - row.created_at).total_seconds()) < 600
    (version,) = [v for v in report["versions"] if v["predictions"] >= 1000]
    assert version["labelled"] == 1 and version["drift"]["drifted"] is True  # One image 1,000 times: all one class.
    assert sum(point["predictions"] for point in version["timeline"]) == version["predictions"]


def test_a_database_stopped_mid_run_loses_no_answer(postgres: Postgres) -> None:
    from app import metrics

    dropped_before = metrics.MONITORING_DROPPED._value.get()
    with running_client(COMMITTED_MODELS, monitoring_db=postgres.url) as client:
        log = client.app.state.dataplane.log  # type: ignore[attr-defined]
        before = [client.post("/predict", files={"file": ("a.png", PNG)}) for _ in range(50)]
        log.flush(60)
        postgres.stop()
        try:
            during = [client.post("/predict", files={"file": ("a.png", PNG)}) for _ in range(50)]
            log.flush(60)
        finally:
            postgres.start()
        after = [client.post("/predict", files={"file": ("a.png", PNG)}) for _ in range(20)]
        log.flush(60)
    assert all(answer.status_code == 200 for answer in before + during + after)
    assert metrics.MONITORING_DROPPED._value.get() - dropped_before == 50
    logged = logged_ids(postgres.url)
    assert {answer.json()["prediction_id"] for answer in before + after} <= logged  # Back once it is back.
    assert not {answer.json()["prediction_id"] for answer in during} & logged


def test_two_workers_and_a_second_replica_share_one_log(postgres: Postgres, tmp_path: Path) -> None:
    engine = create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:  # A fresh database, so both replicas migrate it at once.
        connection.execute(text("CREATE DATABASE shared_log"))
    engine.dispose()
    url = postgres.url.rsplit("/", 1)[0] + "/shared_log"
    environment = {"MONITORING_DB": url, "POLL_INTERVAL_SECONDS": "0"}
    with (
        server_process(COMMITTED_MODELS, tmp_path / "a.log", WORKERS="2", **environment) as first,
        server_process(COMMITTED_MODELS, tmp_path / "b.log", **environment) as second,
    ):
        ids = [
            httpx.post(f"{server.url}/predict", files={"file": ("a.png", PNG)}, timeout=30).json()["prediction_id"]
            for server in (first, second)
            for _ in range(100)
        ]
    # The servers write what is queued as they stop.
    engine = create_engine(url)
    with engine.connect() as connection:
        count = connection.scalar(select(func.count()).select_from(Prediction))
    engine.dispose()
    assert set(ids) <= logged_ids(url) and count == 200
    for log in ("a.log", "b.log"):
        assert "Traceback" not in (tmp_path / log).read_text()
