"""The portable SavedModel: plain TensorFlow, in a fresh process, answers what the service answers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.utils.data import COMMITTED_MODELS, SAMPLES
from tests.utils.servers import running_client
from training.core import artifacts
from training.export import export_version

pytestmark = pytest.mark.slow

# Loads the SavedModel with nothing from this project: what TF Serving or KServe would do.
RELOAD = """
import json, sys
import numpy as np
import tensorflow as tf
from PIL import Image
folder, files = sys.argv[1], sys.argv[2:]
serve = tf.saved_model.load(folder).signatures["serving_default"]
images = np.stack([np.asarray(Image.open(path)) for path in files])
outputs = serve(images=tf.constant(images))
print(json.dumps({key: value.numpy().tolist() for key, value in outputs.items()}))
"""


def _reloaded(folder: Path, files: list[Path]) -> dict[str, list[list[float]]]:
    result = subprocess.run(
        [sys.executable, "-c", RELOAD, str(folder), *map(str, files)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer: dict[str, list[list[float]]] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def _served(client: TestClient, name: str, version: int, files: list[Path]) -> np.ndarray:
    rows = []
    for path in files:
        params = {"model": name, "version": version}
        body = client.post("/predict", files={"file": ("x.png", path.read_bytes())}, params=params).json()
        rows.append(list(body["probabilities"].values()))
    return np.array(rows)


def test_an_exported_version_answers_as_the_service_does(store_copy: Path) -> None:
    folder = export_version(store_copy / "model_1" / "1")
    assert (folder / artifacts.SAVED_MODEL_FILE).is_file() and (folder / "variables").is_dir()
    assert not [path for path in folder.iterdir() if path.name.startswith(artifacts.STAGING_PREFIX)]
    files = sorted(SAMPLES.glob("*.png"))[:8]
    reloaded = _reloaded(folder, files)
    with running_client(store_copy) as client:
        served = _served(client, "model_1", 1, files)
    assert np.array(reloaded["probabilities"]) == pytest.approx(served, abs=1e-5)
    assert reloaded["class_index"] == served.argmax(axis=1).tolist()


def _committed_exports() -> list[Path]:
    return sorted(path.parent for path in COMMITTED_MODELS.glob(f"*/*/{artifacts.SAVED_MODEL_FILE}"))


@pytest.mark.parametrize("folder", _committed_exports(), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_committed_exports_answer_as_the_service_does(folder: Path, tmp_path: Path) -> None:
    files = sorted(SAMPLES.glob("*.png"))
    reloaded = np.array(_reloaded(folder, files)["probabilities"])
    store = tmp_path / "models"
    shutil.copytree(folder, store / folder.parent.name / folder.name)
    # The SavedModel is the fp32 procedure; a version with an int8 model would otherwise answer in int8.
    with running_client(store, inference_backend="openvino") as client:
        served = _served(client, folder.parent.name, int(folder.name), files)
    assert reloaded == pytest.approx(served, abs=1e-5)
