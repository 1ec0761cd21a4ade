"""Serving needs no TensorFlow: versions with OpenVINO IR load and answer without importing it (nor OpenVINO's
usage reporting; and importing the app leaves the process's logging alone)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.backends import Backend, installed
from tests.utils.data import COMMITTED_MODELS, REPO, SAMPLES
from training.core import artifacts

pytestmark = pytest.mark.skipif(not installed(Backend.OPENVINO), reason="openvino is not installed")

# A fresh interpreter (this one imported TensorFlow long ago): start the app on a store, answer, report.
SERVE = """
import json, logging, sys
from fastapi.testclient import TestClient
from app.config import Settings
from app.main import create_app
from tests.utils.servers import wait_ready

logging_set_by_import = bool(logging.getLogger().handlers)

store, image = sys.argv[1], sys.argv[2]
with TestClient(create_app(Settings(models_dir=store, poll_interval_seconds=0))) as client:
    wait_ready(client)
    answer = client.post("/predict", files={"file": ("x.png", open(image, "rb").read())})
    models = client.get("/models").json()["models"]
backends = {f"{m['name']}/{v['version']}": v["backend"] for m in models for v in m["versions"]}
print(json.dumps({
    "status": answer.status_code,
    "backends": backends,
    "imported": sorted(n for n in ("tensorflow", "keras", "openvino_telemetry") if sys.modules.get(n) is not None),
    "logging_set_by_import": logging_set_by_import,
}))
"""


def _serve(store: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", SERVE, str(store), str(SAMPLES / "test_00000_cat.png")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report: dict = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def test_the_tiny_store_serves_without_importing_tensorflow(tiny_store: Path) -> None:
    report = _serve(tiny_store)
    assert report["status"] == 200
    assert report["backends"] == {"model_1/1": "openvino"}
    assert report["imported"] == []
    # Importing the app leaves the importer's logging alone (the service sets it up when it starts): the
    # heavy-JSON test's clients, which imported it, once logged every request they sent.
    assert report["logging_set_by_import"] is False


@pytest.mark.slow
def test_the_committed_store_serves_without_importing_tensorflow() -> None:
    report = _serve(COMMITTED_MODELS)
    assert report["status"] == 200
    assert "tensorflow" not in report["backends"].values(), report["backends"]
    assert report["imported"] == []


@pytest.mark.slow  # TensorFlow in a subprocess: the marker's definition (pyproject.toml).
def test_a_version_without_ir_brings_tensorflow_in_for_itself(store_copy: Path) -> None:
    shutil.rmtree(store_copy / "model_1" / "1" / artifacts.IR_DIR)
    report = _serve(store_copy)
    assert report["status"] == 200
    assert report["backends"] == {"model_1/1": "tensorflow"}
    assert "tensorflow" in report["imported"]
