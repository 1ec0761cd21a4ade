"""Every answer says whether the image looks like the training images: `ood_score` and
`in_distribution` on /predict, /predict/batch, the Open Inference Protocol and TF Serving's API,
null for a version without a novelty score, counted in Prometheus and recorded in the log."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.utils.servers import running_client
from training.core import artifacts
from training.core.novelty import threshold


@pytest.fixture(scope="module")
def client(novelty_store: Path) -> Iterator[TestClient]:
    """v1: no score; v2: with one (fp32 IR); v3: v2 in int8."""
    with running_client(novelty_store, default_model="model_1") as ready:
        yield ready


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def tiny_like() -> np.ndarray:
    """Like the tiny training images: a flat colour with a little noise."""
    rng = np.random.default_rng(5)
    return np.clip(75 + rng.integers(-20, 20, (32, 32, 3)), 0, 255).astype(np.uint8)


def checkerboard() -> np.ndarray:
    """Nothing like them: black and white squares."""
    y, x = np.mgrid[0:32, 0:32]
    return np.repeat((((y // 4 + x // 4) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)


def predict(client: TestClient, pixels: np.ndarray, version: int) -> dict:
    response = client.post(f"/predict?model=model_1&version={version}", files={"file": ("x.png", png(pixels))})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("version", [2, 3])
def test_a_scored_version_answers_its_score_and_verdict(client: TestClient, version: int) -> None:
    familiar, strange = predict(client, tiny_like(), version), predict(client, checkerboard(), version)
    assert isinstance(familiar["ood_score"], float) and familiar["in_distribution"] is True
    assert strange["in_distribution"] is False and strange["ood_score"] > familiar["ood_score"]
    assert sum(strange["probabilities"].values()) == pytest.approx(1, abs=1e-4), "the probabilities keep their meaning"


def test_a_version_without_statistics_answers_null_and_says_why(client: TestClient) -> None:
    answer = predict(client, checkerboard(), 1)
    assert answer["ood_score"] is None and answer["in_distribution"] is None
    versions = {item["version"]: item for item in _model(client)["versions"]}
    assert versions[1]["novelty"] == {
        "available": False,
        "threshold": None,
        "quantile": None,
        "reason": "this version has no novelty statistics (python -m training novelty adds them)",
    }


def test_models_show_each_backends_threshold(client: TestClient, novelty_store: Path) -> None:
    predict(client, tiny_like(), 2), predict(client, tiny_like(), 3)
    versions = {item["version"]: item for item in _model(client)["versions"]}
    metadata = {v: artifacts.load_artifact(novelty_store / "model_1" / str(v)).metadata for v in (2, 3)}
    assert metadata[2].novelty and metadata[3].quantization and metadata[3].quantization.novelty_holdout_scores
    assert versions[2]["backend"] == "openvino" and versions[3]["backend"] == "openvino-int8"
    assert versions[2]["novelty"]["threshold"] == pytest.approx(threshold(metadata[2].novelty.holdout_scores, 0.95))
    int8_scores = metadata[3].quantization.novelty_holdout_scores
    assert versions[3]["novelty"]["threshold"] == pytest.approx(threshold(int8_scores, 0.95))
    assert versions[2]["novelty"]["available"] is True and versions[2]["novelty"]["quantile"] == 0.95


def test_the_quantile_setting_moves_the_threshold(novelty_store: Path) -> None:
    with running_client(novelty_store, default_model="model_1", ood_threshold_quantile=0.5) as strict:
        predict(strict, tiny_like(), 2)
        versions = {item["version"]: item for item in _model(strict)["versions"]}
    scores = artifacts.load_artifact(novelty_store / "model_1" / "2").metadata.novelty.holdout_scores
    assert versions[2]["novelty"]["threshold"] == pytest.approx(float(np.median(scores)))


def test_batch_items_carry_the_fields(client: TestClient) -> None:
    files = [("files", ("a.png", png(tiny_like()))), ("files", ("b.png", png(checkerboard())))]
    results = client.post("/predict/batch?model=model_1&version=2", files=files).json()["results"]
    assert [item["prediction"]["in_distribution"] for item in results] == [True, False]


def test_the_open_inference_protocol_answers_ood_score_and_in_distribution(client: TestClient) -> None:
    pixels = np.stack([tiny_like(), checkerboard()])
    body = {
        "inputs": [
            {"name": "images", "datatype": "UINT8", "shape": list(pixels.shape), "data": pixels.ravel().tolist()}
        ]
    }
    outputs = {
        item["name"]: item for item in client.post("/v2/models/model_1/versions/2/infer", json=body).json()["outputs"]
    }
    assert set(outputs) == {"probabilities", "class_index", "ood_score", "in_distribution"}
    assert outputs["ood_score"]["datatype"] == "FP32" and outputs["ood_score"]["shape"] == [2]
    assert outputs["in_distribution"] == {
        "name": "in_distribution",
        "datatype": "BOOL",
        "shape": [2],
        "data": [True, False],
    }
    unscored = client.post("/v2/models/model_1/versions/1/infer", json=body).json()
    assert [item["name"] for item in unscored["outputs"]] == ["probabilities", "class_index"]
    asked = client.post("/v2/models/model_1/versions/1/infer", json=body | {"outputs": [{"name": "ood_score"}]})
    assert asked.status_code == 400 and "no novelty score" in asked.json()["error"]
    described = client.get("/v2/models/model_1/versions/2").json()
    assert [item["name"] for item in described["outputs"]] == list(outputs)


def test_tf_serving_answers_the_score_as_a_named_output(client: TestClient) -> None:
    instances = [tiny_like().tolist(), checkerboard().tolist()]
    rows = client.post("/v1/models/model_1/versions/2:predict", json={"instances": instances}).json()["predictions"]
    assert set(rows[0]) == {"probabilities", "class_index", "ood_score", "in_distribution"}
    assert [row["in_distribution"] for row in rows] == [True, False]
    columns = client.post("/v1/models/model_1/versions/2:predict", json={"inputs": instances}).json()["outputs"]
    assert columns["ood_score"] == pytest.approx([row["ood_score"] for row in rows], abs=1e-5)
    bare = client.post("/v1/models/model_1/versions/1:predict", json={"instances": instances}).json()["predictions"]
    assert len(bare[0]) == 10, "a version without a score keeps the one-output answer"
    signature = client.get("/v1/models/model_1/versions/2/metadata").json()["metadata"]["signature_def"]
    assert "ood_score" in signature["signature_def"]["serving_default"]["outputs"]


def test_prometheus_counts_out_of_distribution_answers(client: TestClient) -> None:
    def count() -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith('cifar_out_of_distribution_total{model="model_1",version="2"}'):
                return float(line.split()[-1])
        return 0.0

    before = count()
    predict(client, checkerboard(), 2)
    predict(client, tiny_like(), 2)
    assert count() == before + 1


def _model(client: TestClient) -> dict:
    listed = client.get("/models").json()
    return next(item for item in listed["models"] if item["name"] == "model_1")


def test_the_log_records_each_verdict_and_the_report_gives_the_unknown_rate(
    novelty_store: Path, tmp_path: Path
) -> None:
    from sqlalchemy import select

    from training.core.prediction_log import Prediction

    with running_client(novelty_store, default_model="model_1", monitoring_db=f"sqlite:///{tmp_path}/log.db") as logged:
        answers = [predict(logged, image, 2) for image in (tiny_like(), checkerboard(), tiny_like(), checkerboard())]
        answers.append(predict(logged, tiny_like(), 1))  # No score: no verdict, not counted either way.
        log = logged.app.state.dataplane.log  # type: ignore[attr-defined]
        assert log.flush(30)
        report = {v["version"]: v for v in logged.get("/monitoring", params={"model": "model_1"}).json()["versions"]}
        with log.session() as session:
            stored = {row.id: row for row in session.scalars(select(Prediction))}
    for answer in answers:
        row = stored[answer["prediction_id"]]
        assert row.in_distribution == answer["in_distribution"]
        assert row.ood_score == (None if answer["ood_score"] is None else pytest.approx(answer["ood_score"]))
    assert report[2]["unknown_rate"] == 0.5 and report[1]["unknown_rate"] is None
    assert sum(point["unknown_rate"] * point["predictions"] for point in report[2]["timeline"]) == 2
