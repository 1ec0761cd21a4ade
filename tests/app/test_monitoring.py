"""The prediction log (SQLite here; PostgreSQL in test_monitoring_postgres.py): an id in every answer and a
row for each, feedback and its rules, the report's statistics against an independent computation,
retention, a database that is down, and a schema that only migrations change."""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import socket
import struct
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from PIL import Image
from scipy import stats
from sqlalchemy import func, select, update

from app.monitoring.log import PredictionLog
from app.routers.monitoring import GAUGE_REFRESH_SECONDS, build_report, pause_after_refresh
from tests.utils.data import CLASS_NAMES, COMMITTED_MODELS, SAMPLES
from tests.utils.servers import running_client
from training.core.prediction_log import Base, Feedback, Prediction

SAMPLE_FILES = sorted(SAMPLES.glob("*.png"))


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, PredictionLog]]:
    database = tmp_path_factory.mktemp("log") / "monitoring.db"
    with running_client(COMMITTED_MODELS, monitoring_db=f"sqlite:///{database}") as client:
        log = client.app.state.dataplane.log  # type: ignore[attr-defined]
        assert isinstance(log, PredictionLog)
        yield client, log


def rows(log: PredictionLog, ids: list[str]) -> dict[str, Prediction]:
    assert log.flush(30)
    with log.session() as session:
        found = session.scalars(select(Prediction).where(Prediction.id.in_(ids))).all()
        return {row.id: row for row in found}


def predict(client: TestClient, path: Path, model: str = "model_1") -> dict[str, object]:
    response = client.post("/predict", params={"model": model}, files={"file": (path.name, path.read_bytes())})
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


def test_every_answer_has_an_id_and_a_row(logged: tuple[TestClient, PredictionLog]) -> None:
    client, log = logged
    single = predict(client, SAMPLE_FILES[0])
    files = [("files", (path.name, path.read_bytes())) for path in SAMPLE_FILES[:3]] + [("files", ("x.png", b"no"))]
    batch = client.post("/predict/batch", params={"model": "model_1"}, files=files).json()
    pixels = np.stack([np.asarray(Image.open(path).convert("RGB")) for path in SAMPLE_FILES[:2]])
    body = {"inputs": [{"name": "images", "datatype": "UINT8", "shape": [2, 32, 32, 3], "data": pixels.tolist()}]}
    v2 = client.post("/v2/models/model_1/infer", json=body)
    v1 = client.post("/v1/models/model_1:predict", json={"instances": pixels.tolist()})
    batch_ids = [item["prediction"]["prediction_id"] for item in batch["results"] if item["prediction"]]
    v2_ids, v1_ids = v2.headers["prediction-id"].split(","), v1.headers["prediction-id"].split(",")
    assert len(batch_ids) == 3 and batch["results"][3]["prediction"] is None  # The bad file has no id.
    assert len(v2_ids) == len(v1_ids) == 2
    ids = [str(single["prediction_id"]), *batch_ids, *v2_ids, *v1_ids]
    assert len(set(ids)) == len(ids) == 8
    logged_rows = rows(log, ids)
    assert set(logged_rows) == set(ids)
    assert [logged_rows[i].endpoint for i in ids] == ["predict"] + ["predict_batch"] * 3 + ["v2"] * 2 + ["v1"] * 2
    row = logged_rows[str(single["prediction_id"])]
    assert (row.model, row.version, row.class_name) == ("model_1", single["version"], single["class_name"])
    assert row.probability == pytest.approx(single["probability"])
    decoded = np.asarray(Image.open(SAMPLE_FILES[0]).convert("RGB"), dtype=np.uint8)
    assert row.pixels_sha256 == hashlib.sha256(decoded.tobytes()).hexdigest()
    assert row.image_png is None and row.latency_ms > 0  # LOG_IMAGES is off by default.


def test_images_are_kept_only_when_asked(tmp_path: Path) -> None:
    with running_client(COMMITTED_MODELS, monitoring_db=f"sqlite:///{tmp_path}/log.db", log_images=True) as client:
        answer = predict(client, SAMPLE_FILES[1])
        row = rows(client.app.state.dataplane.log, [str(answer["prediction_id"])])[str(answer["prediction_id"])]  # type: ignore[attr-defined]
    assert row.image_png is not None
    stored = np.asarray(Image.open(io.BytesIO(row.image_png)))
    np.testing.assert_array_equal(stored, np.asarray(Image.open(SAMPLE_FILES[1]).convert("RGB")))


def test_feedback_rules(logged: tuple[TestClient, PredictionLog]) -> None:
    client, log = logged
    answer = predict(client, SAMPLE_FILES[2])
    prediction_id = str(answer["prediction_id"])
    other = next(name for name in CLASS_NAMES if name != answer["class_name"])
    unknown = client.post("/feedback", json={"prediction_id": "0" * 32, "label": "cat"})
    assert unknown.status_code == 404 and "no logged prediction" in unknown.json()["detail"]
    assert client.post("/feedback", json={"prediction_id": prediction_id, "label": "teapot"}).status_code == 422
    first = client.post("/feedback", json={"prediction_id": prediction_id, "label": other})
    again = client.post("/feedback", json={"prediction_id": prediction_id, "label": other})
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert first.json() == {
        "prediction_id": prediction_id,
        "label": other,
        "predicted": answer["class_name"],
        "correct": False,
    }
    latest = client.post("/feedback", json={"prediction_id": prediction_id, "label": answer["class_name"]})
    assert latest.json()["correct"] is True
    with log.session() as session:
        labels = session.scalars(select(Feedback.label).where(Feedback.prediction_id == prediction_id)).all()
    assert labels == [answer["class_name"]]  # One row, the latest label.


def test_the_report_matches_an_independent_computation(tmp_path: Path) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    with running_client(COMMITTED_MODELS, monitoring_db=f"sqlite:///{tmp_path}/log.db") as client:
        answers = [predict(client, path, "whitened_convnet") for path in SAMPLE_FILES[:24]]
        truths = [path.stem.split("_", 2)[2] for path in SAMPLE_FILES[:24]]  # test_00000_cat.png -> cat
        for answer, truth in zip(answers[:16], truths[:16], strict=True):  # Feedback on two thirds of them.
            client.post("/feedback", json={"prediction_id": answer["prediction_id"], "label": truth})
        client.app.state.dataplane.log.flush(30)  # type: ignore[attr-defined]
        report = client.get("/monitoring", params={"model": "whitened_convnet", "since": since.isoformat()}).json()
        test_record = client.get("/models/whitened_convnet/metrics").json()
        state = client.app.state  # type: ignore[attr-defined]
        gauges = build_report(state.dataplane.log, state.registry, state.settings, since, with_timelines=False)
    (version,) = report["versions"]
    # What the gauges read: the same figures, without the timelines nothing shows there.
    assert [item.model_dump(mode="json") for item in gauges.versions] == [{**version, "timeline": []}]
    counts = np.array([sum(a["class_name"] == name for a in answers) for name in CLASS_NAMES], dtype=float)
    predicted_on_test = np.array(test_record["confusion_matrix"], dtype=float).sum(axis=0)
    expected = predicted_on_test / predicted_on_test.sum()
    chi_square, p_value = stats.chisquare(counts, counts.sum() * expected)
    shares = np.maximum(counts / counts.sum(), 1e-4)
    psi = float(np.sum((shares - np.maximum(expected, 1e-4)) * np.log(shares / np.maximum(expected, 1e-4))))
    right = sum(a["class_name"] == t for a, t in zip(answers[:16], truths[:16], strict=True))
    wilson = stats.binomtest(right, 16).proportion_ci(method="wilson")
    assert version["predictions"] == 24 and version["labelled"] == 16
    timeline = version["timeline"]  # The page's time plot: every prediction in exactly one bucket.
    assert sum(point["predictions"] for point in timeline) == 24 and sum(p["labelled"] for p in timeline) == 16
    assert all(since <= datetime.fromisoformat(point["start"]) <= datetime.now(UTC) for point in timeline)
    assert version["live_accuracy"] == pytest.approx(right / 16)
    assert version["live_accuracy_interval"] == pytest.approx([wilson.low, wilson.high])
    assert version["drift"]["chi_square"] == pytest.approx(chi_square)
    assert version["drift"]["p_value"] == pytest.approx(p_value)
    assert version["drift"]["population_stability_index"] == pytest.approx(psi)
    assert version["drift"]["drifted"] is None  # 24 predictions are too few for a verdict (100).
    assert version["mean_top_probability"] == pytest.approx(np.mean([a["probability"] for a in answers]))
    shift = version["mean_top_probability"] - test_record["probability_scores"]["mean_confidence"]
    assert version["drift"]["mean_top_probability_shift"] == pytest.approx(shift)
    assert version["class_distribution"] == pytest.approx(dict(zip(CLASS_NAMES, counts / 24, strict=True)))


def test_retention_removes_old_predictions_and_their_feedback(logged: tuple[TestClient, PredictionLog]) -> None:
    client, log = logged
    answer = predict(client, SAMPLE_FILES[3])
    prediction_id = str(answer["prediction_id"])
    client.post("/feedback", json={"prediction_id": prediction_id, "label": "cat"})
    log.flush(30)
    with log.session() as session, session.begin():
        session.execute(
            update(Prediction)
            .where(Prediction.id == prediction_id)
            .values(created_at=datetime.now(UTC) - timedelta(days=40))
        )
    removed = log.delete_older_than(datetime.now(UTC) - timedelta(days=30))
    assert removed >= 1 and rows(log, [prediction_id]) == {}
    with log.session() as session:
        assert session.scalar(select(func.count()).where(Feedback.prediction_id == prediction_id)) == 0


def test_a_database_that_is_down_drops_records_and_no_answer(tmp_path: Path) -> None:
    from app import metrics

    before = metrics.MONITORING_DROPPED._value.get()
    down = "postgresql+pg8000://nobody:nothing@127.0.0.1:9/none"  # Port 9 (discard): nothing listens.
    with running_client(COMMITTED_MODELS, monitoring_db=down) as client:
        answers = [client.post("/predict", files={"file": ("a.png", SAMPLE_FILES[0].read_bytes())}) for _ in range(20)]
        assert all(answer.status_code == 200 for answer in answers)
        client.app.state.dataplane.log.flush(30)  # type: ignore[attr-defined]
        assert client.get("/monitoring").status_code == 503
    assert metrics.MONITORING_DROPPED._value.get() - before == 20


@contextlib.contextmanager
def _resetting_server() -> Iterator[int]:
    """A port whose every connection is reset at once, as a database that is shutting down does: the
    driver's connect then fails with ConnectionResetError, an OSError no driver or SQLAlchemy wraps."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)

    def reset_all() -> None:
        while not stopped.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()

    stopped = threading.Event()
    thread = threading.Thread(target=reset_all, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stopped.set()
        thread.join()
        listener.close()


def test_a_connection_reset_drops_records_and_the_writer_goes_on() -> None:
    """A reset on connect fails the insert and then the hourly retention (CI, stop 51: the retention's
    reset ended the writer thread, and every later record was neither written nor counted)."""
    from app import metrics
    from app.monitoring.log import Record

    record = Record(
        "b" * 32, datetime.now(UTC), "m", 1, "predict", 0, "airplane", 0.5, 1.0, np.zeros((32, 32, 3), np.uint8)
    )
    with _resetting_server() as port:
        log = PredictionLog(f"postgresql+pg8000://postgres@127.0.0.1:{port}/postgres")
        log.start()
        before = metrics.MONITORING_DROPPED._value.get()
        for _ in range(2):  # The first batch's turn runs the retention; the second needs a live writer.
            log.record([record] * 3)
            assert log.flush(30)
        log.close()
    assert metrics.MONITORING_DROPPED._value.get() - before == 6


def test_monitoring_off_still_answers_with_ids(tmp_path: Path) -> None:
    with running_client(COMMITTED_MODELS, monitoring_enabled=False) as client:
        assert predict(client, SAMPLE_FILES[0])["prediction_id"]
        assert client.get("/monitoring").status_code == 503


def test_the_migrations_build_exactly_the_tables_of_the_schema(logged: tuple[TestClient, PredictionLog]) -> None:
    _, log = logged
    with log.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path: Path) -> None:
    from app import metrics
    from app.monitoring.log import Record

    log = PredictionLog(f"sqlite:///{tmp_path}/log.db", queue_size=5)  # Not started: nothing drains the queue.
    record = Record(
        "a" * 32, datetime.now(UTC), "m", 1, "predict", 0, "airplane", 0.5, 1.0, np.zeros((32, 32, 3), np.uint8)
    )
    before = metrics.MONITORING_DROPPED._value.get()
    start = time.perf_counter()
    log.record([record] * 12)
    assert time.perf_counter() - start < 0.1
    assert metrics.MONITORING_DROPPED._value.get() - before == 7
    assert not math.isnan(before)


def test_the_gauges_refresh_less_often_when_the_window_is_costly_to_read() -> None:
    """A refresh reads the whole window, which grows with traffic: it may take at most 2% of the time."""
    assert pause_after_refresh(0.05) == GAUGE_REFRESH_SECONDS
    assert pause_after_refresh(10.0) == pytest.approx(500.0)
