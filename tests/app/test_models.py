"""GET /models and the model card endpoints: metadata, layer table, metrics, plots."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_models_lists_versions_status_params_accuracy_and_default(client: TestClient) -> None:
    response = client.get("/models")
    assert response.status_code == 200
    body = response.json()
    assert body["default_model"] == "model_1"
    (model,) = body["models"]
    assert (model["name"], model["is_default"], model["served_version"], model["params"]) == (
        "model_1",
        True,
        1,
        181_162,
    )
    assert model["versions"][0]["state"] == "loaded"
    assert 0.0 <= model["test_accuracy"] <= 1.0


def test_model_metadata(client: TestClient) -> None:
    body = client.get("/models/model_1").json()
    assert body["input_shape"] == [32, 32, 3]
    assert body["scaling"] == "divide_by_255"
    assert body["class_names"][9] == "truck"
    assert body["version"] == 1


def test_model_summary_is_the_layer_table(client: TestClient) -> None:
    body = client.get("/models/model_1/summary", params={"version": 1}).json()
    assert body["total_params"] == 181_162
    assert [row["type"] for row in body["layers"]][:2] == ["Conv2D", "Activation"]
    assert body["layers"][0]["output_shape"] == [None, 16, 16, 32]
    assert "Total params: 181,162" in body["text"]


def test_model_metrics_are_the_stored_training_metrics(client: TestClient) -> None:
    body = client.get("/models/model_1/metrics").json()
    assert body["version"] == 1
    assert len(body["history"]) == 1
    assert {"test_accuracy", "per_class_accuracy", "confusion_matrix", "hyperparameters", "training_seconds"} <= set(
        body
    )


def test_plots_are_pngs(client: TestClient) -> None:
    for plot in ("curves.png", "confusion.png"):
        response = client.get(f"/models/model_1/plots/{plot}")
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        assert response.content.startswith(b"\x89PNG")


def test_unknown_model_and_version_are_404_everywhere(client: TestClient) -> None:
    for path in ("/models/nope", "/models/nope/summary", "/models/nope/metrics", "/models/nope/plots/curves.png"):
        assert client.get(path).status_code == 404, path
    response = client.get("/models/model_1/metrics", params={"version": 5})
    assert response.status_code == 404
    assert "no version 5" in response.json()["detail"]


def test_openapi_documents_responses_and_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    predict = spec["paths"]["/predict"]["post"]
    assert {"200", "404", "413", "415", "422"} <= set(predict["responses"])
    assert client.get("/docs").status_code == 200
