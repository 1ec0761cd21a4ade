"""GET /models/compare: the tutorial's question answered from stored numbers."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.utils.data import COMMITTED_MODELS
from training.core import artifacts


def test_compare_two_models(committed_client: TestClient) -> None:
    response = committed_client.get("/models/compare", params={"names": "model_1,model_2"})
    assert response.status_code == 200
    body = response.json()
    assert [row["name"] for row in body["models"]] == ["model_1", "model_2"]
    first, second = body["models"]
    assert (first["params"], second["params"]) == (181_162, 252_378)
    assert "model_2 has 252,378 parameters, 39% more than model_1's 181,162" in body["summary"]
    metrics = artifacts.load_artifact(artifacts.version_dir(COMMITTED_MODELS, "model_2")).metrics
    assert second["final_val_accuracy"] == metrics.history[-1]["val_accuracy"]
    assert f"{metrics.seconds_per_epoch:.1f} s" in body["summary"]
    assert len(second["history"]) == metrics.epochs


def test_compare_a_single_model(committed_client: TestClient) -> None:
    body = committed_client.get("/models/compare", params={"names": "model_1"}).json()
    assert len(body["models"]) == 1
    assert body["summary"].startswith("model_1 has 181,162 parameters")


def test_compare_unknown_name_is_404(committed_client: TestClient) -> None:
    response = committed_client.get("/models/compare", params={"names": "model_1,nope"})
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


def test_compare_needs_names(committed_client: TestClient) -> None:
    assert committed_client.get("/models/compare").status_code == 422  # Missing parameter: FastAPI validation.
    assert committed_client.get("/models/compare", params={"names": " , "}).status_code == 400
