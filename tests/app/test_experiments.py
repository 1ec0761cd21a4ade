"""The generated answer to the tutorial's question follows from the run statistics."""

from __future__ import annotations

import numpy as np
import pytest

from app.experiments import analyse
from training.core import records, runs


def _run(
    group: str, seed: int, accuracy: float, epochs: int, seconds_per_epoch: float, tutorial: float
) -> runs.RunRecord:
    history = [
        {"epoch": epoch, "val_accuracy": accuracy * epoch / epochs, "train_seconds": seconds_per_epoch}
        for epoch in range(1, epochs + 1)
    ]
    metrics = records.Metrics(
        architecture="m",
        history=history,
        test_accuracy=accuracy,
        test_loss=1.0,
        test_images=10_000,
        per_class_accuracy={},
        confusion_matrix=[],
        evaluate_seconds=1.0,
        epochs=epochs,
        training_seconds=seconds_per_epoch * epochs,
        wall_seconds=seconds_per_epoch * epochs,
        seconds_per_epoch=seconds_per_epoch,
        images_per_second=1.0,
        hyperparameters={"seed": seed},
        dataset=records.DatasetFingerprint(source="s", x_train_sha256="a", x_test_sha256="b", labels_sha256="c"),
        environment={},
        reference=records.Reference(
            test_accuracy=tutorial, epochs=15 if tutorial > 0.6 else 5, seconds_per_epoch=1, hardware="", source=""
        ),
    )
    summary = records.Summary(model="m", layers=[], total_params=1, trainable_params=1, non_trainable_params=0, text="")
    return runs.RunRecord(group, seed, summary, metrics)


def _runs(model_2_at_15: list[float]) -> dict[str, dict[str, list[runs.RunRecord]]]:
    model_1 = [0.61, 0.62, 0.60, 0.63, 0.615]
    model_2_at_5 = [0.48, 0.49, 0.47, 0.485, 0.475]
    return {
        "model_1": {"epochs-15": [_run("epochs-15", s, a, 15, 5.0, 0.645) for s, a in enumerate(model_1)]},
        "model_2": {
            "epochs-5": [_run("epochs-5", s, a, 5, 20.0, 0.5064) for s, a in enumerate(model_2_at_5)],
            "epochs-15": [_run("epochs-15", s, a, 15, 20.0, 0.5064) for s, a in enumerate(model_2_at_15)],
        },
    }


def test_statistics_per_group_and_the_tutorials_position() -> None:
    result = analyse(_runs([0.60, 0.62, 0.61, 0.625, 0.615]), ["model_1", "model_2"])
    assert result is not None
    model_1 = result["models"]["model_1"]["epochs-15"]
    assert model_1["mean"] == pytest.approx(np.mean([0.61, 0.62, 0.60, 0.63, 0.615]))
    assert model_1["tutorial"]["position_vs_ci95"] == "above" and model_1["tutorial"]["runs_below"] == 5
    assert [point["epoch"] for point in model_1["curve"]] == list(range(1, 16))
    assert result["equal_wall_clock"]["training_seconds"] == pytest.approx(75.0)  # model_1's 15 x 5 s.
    assert result["equal_wall_clock"]["val_accuracy"]["model_2/epochs-5"] is not None


def test_a_gap_that_closes_with_equal_epochs_is_explained_by_training_length() -> None:
    result = analyse(_runs([0.60, 0.62, 0.61, 0.625, 0.615]), ["model_1", "model_2"])
    assert result is not None
    assert (
        "model_2 at 5 epochs is 13.5 points below model_1 at 15 epochs (95% CI -14.9 to -12.1, p < 0.001)"
        in (result["conclusion"])
    )
    assert "model_2 at 15 epochs is within noise of model_1" in result["conclusion"]
    assert "The gap is explained by training length" in result["conclusion"]


def test_a_gap_that_stays_is_not_explained_by_training_length() -> None:
    result = analyse(_runs([0.55, 0.56, 0.545, 0.555, 0.56]), ["model_1", "model_2"])
    assert result is not None
    assert "The gap is not explained by training length alone" in result["conclusion"]


def test_models_without_runs_have_no_statistics() -> None:
    assert analyse({}, ["model_1"]) is None
