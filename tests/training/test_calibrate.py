"""Calibration end to end on tiny data: a run that holds images out, and `calibrate` copies of a version
(published once, by the fixture stores' build: tests/utils/stores.py)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.utils.data import TINY_HOLDOUT
from training.architectures import get_architecture
from training.calibrate import calibrate_version
from training.core import artifacts, records
from training.core.forward import forward_for
from training.core.preprocessing import TestTimeAugmentation, TtaAverage
from training.data import calibration_split, load_cifar10
from training.pipeline import training_batches
from training.train import without_calibration_split


def test_a_calibrated_run_records_its_temperature_split_and_reports(calibrated_store: Path) -> None:
    artifact = artifacts.load_artifact(calibrated_store / "model_1" / "1")
    report = artifact.metrics.calibration
    assert report is not None and artifact.metadata.format_version == records.FORMAT_VERSION
    assert artifact.metadata.temperature == report.temperature > 0
    assert artifact.metadata.tta_average == report.tta_average
    assert set(report.alternatives) == {average.value for average in TtaAverage}
    assert artifact.metrics.robustness is not None
    assert set(artifact.metrics.robustness) == {"lossless", "jpeg_q95", "jpeg_q75", "jpeg_q50", "downscale_16px"}
    assert artifact.metrics.robustness["lossless"] == artifact.metrics.test_accuracy
    assert artifact.metrics.hyperparameters["train_images"] == 200 - TINY_HOLDOUT
    assert (artifact.folder / artifacts.CALIBRATION_FILE).read_bytes().startswith(b"\x89PNG")


def test_the_temperature_was_fitted_on_images_training_never_saw(calibrated_store: Path, tiny_cifar_dir: Path) -> None:
    """Re-derive the split from what the version recorded, then replay the run's training batches."""
    metrics = artifacts.load_artifact(calibrated_store / "model_1" / "1").metrics
    assert metrics.calibration is not None
    split = metrics.calibration.split
    held_out = calibration_split(split.train_images, split.size, split.seed)
    assert hashlib.sha256(held_out.astype(np.int64).tobytes()).hexdigest() == split.indices_sha256
    dataset = load_cifar10(tiny_cifar_dir)
    recipe = replace(get_architecture("model_1").recipe, calibration_holdout=split.size)
    x_train, y_train = without_calibration_split(dataset, split.size, split.seed)
    seen = {
        image.tobytes()
        for x, _ in training_batches(x_train, y_train, recipe, seed=split.seed).batches
        for image in np.rint(x.numpy() * 255).astype(np.uint8)
    }
    assert len(seen) == len(set(map(bytes, (image.tobytes() for image in x_train))))
    assert not seen & {dataset.x_train[index].tobytes() for index in held_out}


def test_calibrating_a_version_publishes_a_calibrated_copy(calibrated_store: Path) -> None:
    source = artifacts.load_artifact(calibrated_store / "model_1" / "1")
    copy = artifacts.load_artifact(calibrated_store / "model_1" / "2")
    assert copy.metadata.test_time_augmentation is source.metadata.test_time_augmentation
    assert copy.metadata.temperature == pytest.approx(source.metadata.temperature)
    assert copy.metrics.history == source.metrics.history and copy.summary == source.summary


def test_a_temperature_fitted_on_damaged_copies_too_is_recorded_as_such(
    calibrated_store: Path, tiny_cifar_dir: Path
) -> None:
    from training import augment, calibration
    from training.core.forward import view_logits

    source_folder = calibrated_store / "model_1" / "1"
    source = artifacts.load_artifact(source_folder)
    copy = artifacts.load_artifact(calibrated_store / "model_1" / "3")
    report = copy.metrics.calibration
    assert report is not None and report.fitted_on_damaged and not source.metrics.calibration.fitted_on_damaged
    # The same fit, by hand: the hold-out's logits and its damaged copy's, labels twice.
    dataset = load_cifar10(tiny_cifar_dir)
    split = source.metrics.calibration.split
    assert split.size == TINY_HOLDOUT
    indices = calibration_split(len(dataset.x_train), split.size, split.seed)
    model = artifacts.load_keras_model(source_folder)
    clean, weights = view_logits(model, "divide_by_255", "none", dataset.x_train[indices])
    damaged, _ = view_logits(model, "divide_by_255", "none", augment.damaged_copy(dataset.x_train[indices], split.seed))
    labels = np.concatenate([dataset.y_train[indices]] * 2)
    both = np.concatenate([clean, damaged], axis=1)
    expected = calibration.fit_temperature(both, weights, labels, report.tta_average)
    assert copy.metadata.temperature == pytest.approx(expected, rel=1e-6)


def test_a_copy_with_other_views_stores_the_accuracy_of_the_forward_pass_it_serves(
    calibrated_store: Path, tiny_cifar_dir: Path
) -> None:
    """`calibrate --tta hflip`: the new version's metadata, metrics and accuracy all describe two-view TTA."""
    published = calibrated_store / "model_1" / "4"
    copy = artifacts.load_artifact(published)
    assert copy.metadata.test_time_augmentation is TestTimeAugmentation.HFLIP
    assert copy.metrics.test_time_augmentation is TestTimeAugmentation.HFLIP
    model = artifacts.load_keras_model(published)
    metadata = copy.metadata
    forward = forward_for(model, metadata)
    dataset = load_cifar10(tiny_cifar_dir)
    served = forward(dataset.x_test).numpy().argmax(axis=1)
    assert metadata.test_accuracy == pytest.approx(float((served == dataset.y_test).mean()))


def test_a_version_trained_on_every_image_cannot_be_calibrated(tiny_store: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="every training image"):
        calibrate_version(tiny_store / "model_1" / "1", tmp_path)
