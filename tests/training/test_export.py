"""Compiled copies: the SavedModel, in plain TensorFlow in a fresh process, and the OpenVINO IR both
answer what the service answers; publishing writes them, `export` adds what a version lacks."""

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
from training.core import artifacts, openvino_runtime
from training.core.forward import forward_for
from training.core.preprocessing import probe_images
from training.core.staging import STAGING_PREFIX
from training.export import PARITY_TOLERANCE, export_version

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


def test_publishing_writes_ir_that_gives_tensorflows_answers(tiny_store: Path) -> None:
    folder = tiny_store / "model_1" / "1"
    record = artifacts.load_ir_record(folder)
    assert record is not None and record.runtime.startswith("openvino ")
    assert record.max_difference <= record.tolerance == PARITY_TOLERANCE
    metadata = artifacts.load_artifact(folder).metadata
    expected = forward_for(artifacts.load_keras_model(folder), metadata)(probe_images()).numpy()
    np.testing.assert_allclose(record.probe_probabilities, expected, atol=1e-7)
    ir = openvino_runtime.compile_for_cpu(openvino_runtime.read_model(folder / artifacts.IR_DIR / "model.xml"))
    np.testing.assert_allclose(ir(probe_images()), expected, atol=PARITY_TOLERANCE)
    assert set(record.milliseconds) == {"1", "16", "32"}


def test_export_adds_only_what_a_version_lacks(store_copy: Path) -> None:
    folder = store_copy / "model_1" / "1"
    assert export_version(folder) == []
    shutil.rmtree(folder / artifacts.IR_DIR)
    assert export_version(folder) == ["OpenVINO IR"]
    assert artifacts.load_ir_record(folder) is not None
    assert not [path for path in folder.iterdir() if path.name.startswith(STAGING_PREFIX)]


@pytest.mark.slow
def test_an_exported_version_answers_as_the_service_does(store_copy: Path) -> None:
    folder = store_copy / "model_1" / "1"
    (folder / artifacts.SAVED_MODEL_FILE).unlink()
    assert export_version(folder) == ["SavedModel"]
    assert (folder / artifacts.SAVED_MODEL_FILE).is_file() and (folder / "variables").is_dir()
    assert not [path for path in folder.iterdir() if path.name.startswith(STAGING_PREFIX)]
    files = sorted(SAMPLES.glob("*.png"))[:8]
    reloaded = _reloaded(folder, files)
    with running_client(store_copy) as client:
        served = _served(client, "model_1", 1, files)
    assert np.array(reloaded["probabilities"]) == pytest.approx(served, abs=1e-5)
    assert reloaded["class_index"] == served.argmax(axis=1).tolist()


def _committed_exports() -> list[Path]:
    return sorted(path.parent for path in COMMITTED_MODELS.glob(f"*/*/{artifacts.SAVED_MODEL_FILE}"))


@pytest.mark.slow
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
