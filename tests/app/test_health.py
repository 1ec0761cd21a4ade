"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.utils.servers import running_client

PREDICT_OK = 'http_requests_total{handler="/predict",method="POST",status="2xx"}'


def test_healthz_is_alive(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_lists_loaded_models(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "models": {"model_1": [1]}}


def test_readyz_is_503_with_an_empty_store(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(models_dir=tmp_path, poll_interval_seconds=0))) as client:
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["status"] in ("loading", "no model available")


def test_metrics_count_requests_latencies_and_predicted_classes(client: TestClient, png_bytes: bytes) -> None:
    prediction = client.post("/predict", files={"file": ("a.png", png_bytes)}).json()
    text = client.get("/metrics").text
    assert PREDICT_OK in text
    # Latency in buckets for a service that answers in milliseconds, not the library's 0.1 / 0.5 / 1 s.
    assert 'http_request_duration_seconds_bucket{handler="/predict",le="0.005",method="POST"}' in text
    assert "http_request_size_bytes" not in text  # Two observations per request, not the library's five.
    assert f'cifar_predictions_total{{label="{prediction["class_name"]}",model="model_1",version="1"}}' in text
    assert 'cifar_predict_seconds_count{model="model_1",version="1"}' in text
    assert "cifar_batch_size_bucket" in text
    assert "cifar_forward_pass_seconds_sum" in text


def test_every_app_in_a_process_counts_its_requests(tiny_store: Path, png_bytes: bytes) -> None:
    """prometheus_client's registry is one per process: an app created after another (tests, an embedding)
    must still count its requests, not find the names taken and count nothing."""

    def predictions_counted(client: TestClient) -> float:
        lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(PREDICT_OK)]
        return float(lines[0].split()[-1]) if lines else 0.0

    with running_client(tiny_store), running_client(tiny_store) as second:
        before = predictions_counted(second)
        assert second.post("/predict", files={"file": ("a.png", png_bytes)}).status_code == 200
        assert predictions_counted(second) == before + 1


def _http_requests(client: TestClient) -> dict[str, float]:
    lines = (line for line in client.get("/metrics").text.splitlines() if line.startswith("http_requests_total{"))
    return {key: float(value) for key, value in (line.rsplit(" ", 1) for line in lines)}


def test_requests_are_counted_under_their_route_template_not_their_url(client: TestClient) -> None:
    before = _http_requests(client)
    for url in ("/v2/models/model_1", "/v2/models/model_1", "/v2/models/no_such_model"):
        client.get(url)
    after = _http_requests(client)
    ok = 'http_requests_total{handler="/v2/models/{name}",method="GET",status="2xx"}'
    not_found = ok.replace("2xx", "4xx")
    assert after[ok] == before.get(ok, 0) + 2
    assert after[not_found] == before.get(not_found, 0) + 1
    assert not [key for key in after if "model_1" in key or "no_such_model" in key]


def test_unrouted_paths_share_one_label_and_metrics_and_static_files_are_not_counted(client: TestClient) -> None:
    before = _http_requests(client)
    for path in ("/wp-admin/setup.php", "/.env", "/static/app.js", "/metrics"):
        client.get(path)
    after = _http_requests(client)
    unrouted = 'http_requests_total{handler="none",method="GET",status="4xx"}'
    assert after[unrouted] == before.get(unrouted, 0) + 2
    assert set(after) == set(before) | {unrouted}  # No new label for a scanner's URL, /static or /metrics.
