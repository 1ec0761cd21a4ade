"""Training end to end on tiny data, in process: a complete, loadable version with its records."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from tests.utils.data import CLASS_NAMES
from training.core import artifacts
from training.core.forward import make_forward


def test_a_run_publishes_a_complete_loadable_version(tiny_store: Path) -> None:
    folder = artifacts.version_dir(tiny_store, "model_1", 1)
    assert sorted(p.name for p in folder.iterdir()) == sorted(artifacts.ARTIFACT_FILES)
    model = keras.saving.load_model(folder / artifacts.MODEL_FILE, compile=False)
    assert model.count_params() == 181_162
    assert not model.compiled  # No optimizer state: the artifact stays small.
    assert (folder / artifacts.MODEL_FILE).stat().st_size < 1_000_000


def test_metrics_record_history_results_and_provenance(tiny_store: Path) -> None:
    metrics = artifacts.load_artifact(artifacts.version_dir(tiny_store, "model_1", 1)).metrics
    assert [row["epoch"] for row in metrics.history] == [1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds", "train_seconds"} <= set(metrics.history[0])
    assert np.array(metrics.confusion_matrix).sum() == metrics.test_images == 50
    assert list(metrics.per_class_accuracy) == CLASS_NAMES
    assert metrics.hyperparameters["learning_rate"] == 0.0005
    assert metrics.hyperparameters["epochs"] == 1
    assert metrics.hyperparameters["optimizer"] == "rmsprop_decay"
    assert metrics.reference is not None and metrics.reference.test_accuracy == 0.645
    assert len(metrics.dataset.x_train_sha256) == 64
    assert metrics.environment["tensorflow"].startswith("2.")
    assert metrics.images_per_second > 0


def test_stored_accuracy_is_the_serving_forward_pass_accuracy(tiny_store: Path, tiny_cifar_dir: Path) -> None:
    from training.data import load_cifar10

    folder = artifacts.version_dir(tiny_store, "model_1", 1)
    metadata = artifacts.load_artifact(folder).metadata
    model = artifacts.load_keras_model(folder)
    dataset = load_cifar10(tiny_cifar_dir)
    probabilities = make_forward(model, metadata.scaling)(dataset.x_test).numpy()
    assert metadata.test_accuracy == float((probabilities.argmax(1) == dataset.y_test).mean())
    assert metadata.class_names[0] == "airplane" and metadata.input_dtype == "uint8"
