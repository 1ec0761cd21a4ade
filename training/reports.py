"""What a finished run writes besides the model: the layer table, metadata, metrics and plots.

Each builder returns the store format's own typed record (`training.core.artifacts`),
so what training writes is exactly what the service reads.
"""

from __future__ import annotations

import io
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import keras
import matplotlib
import numpy as np

matplotlib.use("Agg")  # Files only; no display on servers or in containers.
import matplotlib.pyplot as plt
import tensorflow as tf

from training.core import artifacts, records
from training.core.records import LayerRow, Metadata, Metrics, Summary
from training.evaluation import Evaluation
from training.provenance import RunDescription


def layer_summary(model: keras.Model) -> Summary:
    """The table `model.summary()` prints, as data, plus the text itself."""
    rows = [
        LayerRow(name=layer.name, type=type(layer).__name__, output_shape=_shape(layer), params=layer.count_params())
        for layer in model.layers
    ]
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    lines: list[str] = []
    model.summary(print_fn=lines.append, line_length=80)  # Rich wraps wider tables off-terminal.
    return Summary(
        model=model.name,
        layers=rows,
        total_params=trainable + non_trainable,
        trainable_params=trainable,
        non_trainable_params=non_trainable,
        text="\n".join(lines),
    )


def _shape(layer: keras.layers.Layer) -> list[int | None]:
    return [None if size is None else int(size) for size in layer.output.shape]


def build_metrics(
    run: RunDescription,
    environment: dict[str, str],
    history: list[dict[str, int | float]],
    evaluation: Evaluation,
    reference: records.Reference | None,
) -> Metrics:
    train_seconds = sum(row["train_seconds"] for row in history)
    single_view = evaluation.single_view
    return Metrics(
        architecture=run.architecture,
        history=history,
        **results_fields(evaluation),
        test_time_augmentation=run.recipe["test_time_augmentation"],
        test_accuracy_without_tta=single_view.test_accuracy if single_view else None,
        test_loss_without_tta=single_view.test_loss if single_view else None,
        evaluate_seconds=evaluation.seconds,
        epochs=len(history),
        training_seconds=train_seconds,
        wall_seconds=sum(row["seconds"] for row in history),
        seconds_per_epoch=train_seconds / max(len(history), 1),
        images_per_second=run.train_images * len(history) / max(train_seconds, 1e-9),
        hyperparameters=run.hyperparameters(),
        dataset=run.dataset,
        environment=environment,
        reference=reference,
    )


def results_fields(evaluation: Evaluation) -> dict[str, Any]:
    """The metrics.json fields an evaluation fills (training and post-hoc calibration share them)."""
    return {
        **asdict(evaluation.served),
        "robustness": evaluation.robustness,
        "corruption": evaluation.corruption,
        "calibration": evaluation.calibration,
        "probability_scores": evaluation.scores,
    }


def build_metadata(
    run: RunDescription, description: str, class_names: list[str], summary: Summary, evaluation: Evaluation
) -> Metadata:
    return Metadata(
        name=run.architecture,
        architecture=run.architecture,
        description=description,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        scaling=run.recipe["scaling"],
        test_time_augmentation=run.recipe["test_time_augmentation"],
        tta_average=evaluation.average,
        temperature=evaluation.temperature,
        class_names=class_names,
        params=summary.total_params,
        test_accuracy=evaluation.served.test_accuracy,
        keras_version=keras.__version__,
        tensorflow_version=tf.__version__,
    )


def plots(
    history: list[dict[str, int | float]], evaluation: Evaluation, class_names: list[str], name: str
) -> dict[str, bytes]:
    """The version's PNG plots, by file name."""
    title = f"{name}: test accuracy {evaluation.served.test_accuracy:.2%}"
    return {
        artifacts.CURVES_FILE: plot_curves(history, title),
        artifacts.CONFUSION_FILE: plot_confusion(evaluation.served.confusion_matrix, class_names, title),
        artifacts.CALIBRATION_FILE: plot_reliability(evaluation.reliability, f"{name}: reliability diagram"),
    }


def plot_curves(history: list[dict[str, int | float]], title: str) -> bytes:
    epochs = [row["epoch"] for row in history]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for axis, key, label in ((loss_axis, "loss", "Loss"), (accuracy_axis, "accuracy", "Accuracy")):
        axis.plot(epochs, [row[key] for row in history], "o-", label="training")
        validation = [row.get(f"val_{key}") for row in history]
        if any(value is not None for value in validation):
            axis.plot(epochs, validation, "s-", label="validation (test set)")
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    return _png(figure)


def plot_confusion(confusion: list[list[int]], class_names: list[str], title: str) -> bytes:
    matrix = np.asarray(confusion)
    figure, axis = plt.subplots(figsize=(7, 6))
    image = axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    axis.set_yticks(range(len(class_names)), class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), value in np.ndenumerate(matrix):
        color = "white" if value > threshold else "black"
        axis.text(column, row, str(value), ha="center", va="center", fontsize=7, color=color)
    figure.colorbar(image, ax=axis)
    axis.set_title(title)
    return _png(figure)


def plot_reliability(curves: dict[str, list[tuple[float, float, int]]], title: str) -> bytes:
    """Accuracy against confidence per bin: on the diagonal, a probability means what it says."""
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], "--", color="gray", label="perfectly calibrated")
    for label, points in curves.items():
        if points:
            confidence, accuracy, _ = zip(*points, strict=True)
            axis.plot(confidence, accuracy, "o-", label=label)
    axis.set_xlabel("confidence (top-1 probability)")
    axis.set_ylabel("accuracy")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    axis.legend(loc="upper left")
    axis.set_title(title)
    return _png(figure)


def _png(figure: matplotlib.figure.Figure) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()
