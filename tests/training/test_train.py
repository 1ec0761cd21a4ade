"""Training end to end on tiny data: complete versions, next versions, interruption and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np

from tests.conftest import CLASS_NAMES, REPO
from training import artifacts
from training.inference import make_forward


def test_a_run_publishes_a_complete_loadable_version(tiny_store: Path) -> None:
    folder = artifacts.version_dir(tiny_store, "model_1", 1)
    assert sorted(p.name for p in folder.iterdir()) == sorted(artifacts.ARTIFACT_FILES)
    model = keras.saving.load_model(folder / artifacts.MODEL_FILE, compile=False)
    assert model.count_params() == 181_162
    assert not model.compiled  # No optimizer state: the artifact stays small.
    assert (folder / artifacts.MODEL_FILE).stat().st_size < 1_000_000


def test_metrics_record_history_results_and_provenance(tiny_store: Path) -> None:
    metrics = artifacts.read_json(artifacts.version_dir(tiny_store, "model_1", 1), artifacts.METRICS_FILE)
    assert [row["epoch"] for row in metrics["history"]] == [1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds", "train_seconds"} <= set(metrics["history"][0])
    assert np.array(metrics["confusion_matrix"]).sum() == metrics["test_images"] == 50
    assert list(metrics["per_class_accuracy"]) == CLASS_NAMES
    assert metrics["hyperparameters"]["learning_rate"] == 0.0005
    assert metrics["hyperparameters"]["epochs"] == 1
    assert metrics["reference"]["test_accuracy"] == 0.645
    assert len(metrics["dataset"]["x_train_sha256"]) == 64
    assert metrics["environment"]["tensorflow"].startswith("2.")
    assert metrics["images_per_second"] > 0


def test_stored_accuracy_is_the_serving_forward_pass_accuracy(tiny_store: Path, tiny_cifar_dir: Path) -> None:
    from training.data import load_cifar10

    folder = artifacts.version_dir(tiny_store, "model_1", 1)
    metadata = artifacts.read_json(folder, artifacts.METADATA_FILE)
    model = keras.saving.load_model(folder / artifacts.MODEL_FILE, compile=False)
    dataset = load_cifar10(tiny_cifar_dir)
    probabilities = make_forward(model, metadata["scaling"])(dataset.x_test).numpy()
    assert metadata["test_accuracy"] == float((probabilities.argmax(1) == dataset.y_test).mean())
    assert metadata["class_names"][0] == "airplane" and metadata["input_dtype"] == "uint8"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "training", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(_cli(*args), capture_output=True, text=True, env=_env(), timeout=timeout)


def test_second_run_writes_the_next_version(store_copy: Path, tiny_cifar_dir: Path) -> None:
    common = ("train", "model_2", "--epochs", "1", "--limit", "100", "--data", str(tiny_cifar_dir))
    first = _run_cli(*common, "--models-dir", str(store_copy))
    assert first.returncode == 0, first.stderr
    assert f"published {store_copy / 'model_2' / '1'}" in first.stdout
    second = _run_cli(*common, "--models-dir", str(store_copy), "--seed", "1")
    assert second.returncode == 0, second.stderr
    assert artifacts.list_versions(store_copy, "model_2") == [1, 2]
    assert artifacts.read_json(store_copy / "model_2" / "2", artifacts.METADATA_FILE)["version"] == 2
    metrics = artifacts.read_json(store_copy / "model_2" / "2", artifacts.METRICS_FILE)
    assert metrics["hyperparameters"]["seed"] == 1


def test_interrupted_run_leaves_no_version_and_resumes(tmp_path: Path, tiny_cifar_dir: Path) -> None:
    store = tmp_path / "models"
    command = _cli("train", "model_1", "--epochs", "40", "--data", str(tiny_cifar_dir), "--models-dir", str(store))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    history = artifacts.checkpoint_dir(store, "model_1") / "history.csv"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (history.is_file() and len(history.read_text().splitlines()) >= 3):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)  # Ctrl-C after at least two finished epochs.
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "no version was published" in stderr
    assert artifacts.list_versions(store, "model_1") == []
    assert not [p for p in (store / "model_1").iterdir() if p.name.startswith(artifacts.STAGING_PREFIX)]

    finished = _run_cli(*command[3:])
    assert finished.returncode == 0, finished.stderr
    assert "Resuming" in finished.stdout
    metrics = artifacts.read_json(store / "model_1" / "1", artifacts.METRICS_FILE)
    assert [row["epoch"] for row in metrics["history"]] == list(range(1, 41))
    assert not artifacts.checkpoint_dir(store, "model_1").exists()


def test_bad_arguments_and_missing_data_fail_clearly(tmp_path: Path) -> None:
    bad_epochs = _run_cli("train", "model_1", "--epochs", "0")
    assert bad_epochs.returncode == 2 and "--epochs must be at least 1" in bad_epochs.stderr
    missing = _run_cli("train", "model_1", "--data", str(tmp_path / "absent"), "--models-dir", str(tmp_path))
    assert missing.returncode == 1 and "CIFAR10_DATA" in missing.stderr
