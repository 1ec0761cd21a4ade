"""Hot reload through the running app and real TensorFlow models: new versions are picked up,
broken ones reported and never served, deleted ones dropped. The registry's own logic is
specified, with a fake loader, in test_registry.py."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.utils.servers import running_client
from training.cli import main as cli_main
from training.core import artifacts


def _wait_for(client: TestClient, predicate: Callable[[Any], bool], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listing = client.get("/models").json()
        if predicate(listing):
            return listing
        time.sleep(0.1)
    raise AssertionError(f"condition not met; last listing: {listing}")


def _publish_copy(store: Path, name: str, broken: bool = False, accuracy: float | None = None) -> Path:
    """Add a copy of version 1 the way training does (staging folder, then one rename), optionally corrupt."""
    staging = store / name / f"{artifacts.STAGING_PREFIX}copy"
    shutil.copytree(artifacts.version_dir(store, name, 1), staging)
    if broken:  # Both ways it could serve: the IR and, behind it, the Keras model.
        (staging / artifacts.MODEL_FILE).write_bytes(b"not a keras file")
        (staging / artifacts.IR_DIR / "model.bin").write_bytes(b"not weights")
    if accuracy is not None:  # As if that run had scored `accuracy`.
        path = staging / "metadata.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | {"test_accuracy": accuracy}))
    target = store / name / str(artifacts.list_versions(store, name)[-1] + 1)
    staging.rename(target)
    return target


def test_new_version_is_served_without_restart(store_copy: Path, png_bytes: bytes) -> None:
    with running_client(store_copy) as client:
        _publish_copy(store_copy, "model_1")
        _wait_for(client, lambda body: [v["state"] for v in body["models"][0]["versions"]] == ["loaded"] * 2)
        assert client.post("/predict", files={"file": ("a.png", png_bytes)}).json()["version"] == 2
        assert (
            client.post("/predict", files={"file": ("a.png", png_bytes)}, params={"version": 1}).json()["version"] == 1
        )


def test_broken_version_is_reported_and_never_replaces_a_working_one(store_copy: Path, png_bytes: bytes) -> None:
    with running_client(store_copy) as client:
        _publish_copy(store_copy, "model_1", broken=True)
        listing = _wait_for(
            client, lambda body: [v["state"] for v in body["models"][0]["versions"]] == ["loaded", "failed"]
        )
        model = listing["models"][0]
        assert model["versions"][1]["error"]
        assert model["served_version"] == 1
        answer = client.post("/predict", files={"file": ("a.png", png_bytes)})
        assert answer.status_code == 200 and answer.json()["version"] == 1
        response = client.post("/predict", files={"file": ("a.png", png_bytes)}, params={"version": 2})
        assert response.status_code == 503 and "failed" in response.json()["detail"]


def test_deleted_version_is_unloaded(store_copy: Path) -> None:
    with running_client(store_copy) as client:
        _publish_copy(store_copy, "model_1")
        _wait_for(client, lambda body: body["models"][0]["served_version"] == 2)
        shutil.rmtree(store_copy / "model_1" / "2")
        listing = _wait_for(client, lambda body: body["models"][0]["served_version"] == 1)
        assert [v["version"] for v in listing["models"][0]["versions"]] == [1]


def test_a_worse_trial_run_is_held_back_and_a_cli_pin_promotes_it(store_copy: Path, png_bytes: bytes) -> None:
    with running_client(store_copy) as client:
        _publish_copy(store_copy, "model_1", accuracy=0.0)
        listing = _wait_for(
            client, lambda body: [v["state"] for v in body["models"][0]["versions"]] == ["loaded", "available"]
        )
        model = listing["models"][0]
        assert model["served_version"] == 1
        assert "held back" in model["versions"][1]["held_back"]
        default = client.post("/predict", files={"file": ("a.png", png_bytes)}).json()
        assert default["version"] == 1
        explicit = client.post("/predict", files={"file": ("a.png", png_bytes)}, params={"version": 2}).json()
        assert explicit["version"] == 2  # Loaded by this request.

        assert cli_main(["serve-policy", "model_1", "--models-dir", str(store_copy), "--pin", "2"]) == 0
        _wait_for(client, lambda body: body["models"][0]["served_version"] == 2)
        assert client.post("/predict", files={"file": ("a.png", png_bytes)}).json()["version"] == 2


def test_labels_address_versions_on_predict_and_cards(store_copy: Path, png_bytes: bytes) -> None:
    _publish_copy(store_copy, "model_1")
    arguments = ["serve-policy", "model_1", "--models-dir", str(store_copy), "--label", "stable=1"]
    assert cli_main([*arguments, "--label", "canary=2"]) == 0
    with running_client(store_copy) as client:
        listing = _wait_for(client, lambda body: body["models"][0]["labels"] == {"stable": 1, "canary": 2})
        assert listing["models"][0]["versions"][0]["labels"] == ["stable"]
        for label, version in (("stable", 1), ("canary", 2)):
            answer = client.post("/predict", files={"file": ("a.png", png_bytes)}, params={"label": label})
            assert answer.status_code == 200 and answer.json()["version"] == version
            assert client.get("/models/model_1/summary", params={"label": label}).json()["version"] == version
        unknown = client.post("/predict", files={"file": ("a.png", png_bytes)}, params={"label": "beta"})
        assert unknown.status_code == 404 and "no label 'beta'" in unknown.json()["detail"]
        agreeing = client.get("/models/model_1", params={"label": "stable", "version": 1})
        assert agreeing.status_code == 200 and agreeing.json()["version"] == 1
        disagreeing = client.get("/models/model_1", params={"label": "stable", "version": 2})
        assert disagreeing.status_code == 404 and "names version 1, not 2" in disagreeing.json()["detail"]


def test_an_invalid_policy_file_is_reported_in_the_listing(store_copy: Path) -> None:
    (store_copy / "model_1" / "serving.json").write_text("{not json")
    with running_client(store_copy) as client:
        model = client.get("/models").json()["models"][0]
        assert "serving.json is unreadable" in model["policy_error"]
        assert model["served_version"] == 1
