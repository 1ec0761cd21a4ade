"""Closing the loop: labelled images of the prediction log become a dataset `train --extra-data` takes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from app.monitoring.log import PredictionLog, Record
from training.cli import main
from training.core import artifacts
from training.feedback import ExtraDataError, load_extra_data
from training.train import TrainOptions, train


def logged_with_feedback(tmp_path: Path, labels: list[str | None]) -> str:
    """A prediction log holding one image per label; None: an image nobody labelled."""
    url = f"sqlite:///{tmp_path}/log.db"
    log = PredictionLog(url, log_images=True)
    log.start()
    rng = np.random.default_rng(0)
    records = [
        Record(
            f"{index:032x}",
            datetime.now(UTC),
            "model_1",
            1,
            "predict",
            0,
            "airplane",
            0.9,
            1.0,
            rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
        )
        for index in range(len(labels))
    ]
    log.record(records)
    assert log.flush(30)
    for record, label in zip(records, labels, strict=True):
        if label is not None:
            log.set_feedback(record.id, label)
    log.close()
    return url


def test_the_labelled_logged_images_round_trip_into_training(tmp_path: Path, tiny_cifar_dir: Path) -> None:
    url = logged_with_feedback(tmp_path, ["cat", "cat", "ship", None])
    out = tmp_path / "feedback"
    assert main(["feedback-dataset", "--db", url, "--out", str(out)]) == 0
    assert sorted(p.relative_to(out).parts[0] for p in out.rglob("*.png")) == ["cat", "cat", "ship"]
    images, labels = load_extra_data(out)
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8 and labels.tolist() == [3, 3, 8]

    store = tmp_path / "store"
    published = train(TrainOptions("model_1", store, tiny_cifar_dir, epochs=1, extra_data=out, verbose=0))
    assert published is not None
    dataset = artifacts.load_artifact(published).metrics.dataset
    assert dataset.extra_images == 3 and dataset.extra_sha256


def test_a_folder_that_is_not_labelled_images_is_refused(tmp_path: Path) -> None:
    (tmp_path / "teapot").mkdir()
    with pytest.raises(ExtraDataError, match="not class names: teapot"):
        load_extra_data(tmp_path)
    (tmp_path / "teapot").rmdir()
    with pytest.raises(ExtraDataError, match="no labelled PNG"):
        load_extra_data(tmp_path)
