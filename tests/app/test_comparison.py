"""GET /models/compare: the tutorial's question answered from stored numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.utils.data import COMMITTED_MODELS
from training.core import artifacts, runs


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
    # Only separators: refused by the pattern the OpenAPI document declares (so 422, like any invalid query).
    assert committed_client.get("/models/compare", params={"names": " , "}).status_code == 422
    # A control character the pattern lets through but str.strip() removes: still no name, so 400.
    assert committed_client.get("/models/compare", params={"names": "\x1c"}).status_code == 400


def test_statistics_over_the_committed_runs_match_an_independent_computation(committed_client: TestClient) -> None:
    """Recomputed here with NumPy and SciPy from the stored per-seed accuracies."""
    import numpy as np
    from scipy import stats

    body = committed_client.get("/models/compare", params={"names": "model_1,model_2"}).json()
    statistics = body["statistics"]
    assert statistics is not None, "no repeated runs are committed"
    accuracies: dict[tuple[str, str], list[float]] = {}
    for name in ("model_1", "model_2"):
        for group, seeds in runs.list_runs(COMMITTED_MODELS, name).items():
            values = [runs.load_run(COMMITTED_MODELS, name, group, seed).metrics.test_accuracy for seed in seeds]
            accuracies[(name, group)] = values
            reported = statistics["models"][name][group]
            assert reported["n"] == len(values) >= 3
            assert reported["mean"] == pytest.approx(np.mean(values))
            assert reported["sd"] == pytest.approx(np.std(values, ddof=1))
            low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
            assert reported["ci95"] == pytest.approx([low, high])
    base = (statistics["base"]["model"], statistics["base"]["group"])
    for difference in statistics["differences"]:
        other = accuracies[(difference["model"], difference["group"])]
        reference = stats.ttest_ind(other, accuracies[base], equal_var=False)
        assert difference["p_value"] == pytest.approx(reference.pvalue)
        interval = reference.confidence_interval(0.95)
        assert difference["ci95"] == pytest.approx([interval.low, interval.high])
    assert "model_2 at 5 epochs" in statistics["conclusion"]
    if ("model_2", "epochs-15") in accuracies:  # With equal budgets recorded, the verdict on training length.
        assert "explained by training length" in statistics["conclusion"]


def test_compare_reports_each_versions_corruption_benchmark(client: TestClient, tiny_store: Path) -> None:
    body = client.get("/models/compare", params={"names": "model_1"}).json()
    report = artifacts.load_artifact(artifacts.version_dir(tiny_store, "model_1", 1)).metrics.corruption
    assert report is not None
    row = body["models"][0]["corruption"]
    assert row["mean_accuracy"] == report.mean_accuracy and row["severity_5"] == report.by_severity["5"]
    assert row["ece"] == report.ece and row["seen_in_training"] == []
    assert f"model_1 {report.mean_accuracy:.2%} (ECE {report.ece:.3f})" in body["summary"]


def test_versions_measured_before_the_corruption_benchmark_report_none(committed_client: TestClient) -> None:
    row = committed_client.get("/models/compare", params={"names": "model_2"}).json()["models"][0]
    assert row["corruption"] is None
