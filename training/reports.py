"""What a finished run writes besides the model: the layer table, test results and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import matplotlib

matplotlib.use("Agg")  # Files only; no display on servers or in containers.
import matplotlib.pyplot as plt
import numpy as np


def layer_summary(model: keras.Model) -> dict[str, Any]:
    """The table `model.summary()` prints, as data, plus the text itself."""
    rows = [
        {
            "name": layer.name,
            "type": type(layer).__name__,
            "output_shape": _shape(layer),
            "params": int(layer.count_params()),
        }
        for layer in model.layers
    ]
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    lines: list[str] = []
    model.summary(print_fn=lines.append, line_length=80)  # Rich wraps wider tables off-terminal.
    return {
        "model": model.name,
        "layers": rows,
        "total_params": trainable + non_trainable,
        "trainable_params": trainable,
        "non_trainable_params": non_trainable,
        "text": "\n".join(lines),
    }


def _shape(layer: keras.layers.Layer) -> list[int | None]:
    return [None if size is None else int(size) for size in layer.output.shape]


def test_results(probabilities: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Accuracy, cross-entropy, per-class accuracy and the confusion matrix (rows = true class)."""
    predicted = probabilities.argmax(axis=1)
    count = len(class_names)
    confusion = np.zeros((count, count), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    picked = probabilities[np.arange(len(labels)), labels]
    return {
        "test_accuracy": float((predicted == labels).mean()),
        "test_loss": float(-np.log(np.clip(picked, 1e-7, 1.0)).mean()),
        "test_images": len(labels),
        "per_class_accuracy": {name: float(acc) for name, acc in zip(class_names, per_class, strict=True)},
        "confusion_matrix": confusion.tolist(),
    }


def plot_curves(history: list[dict[str, float]], title: str, path: Path) -> None:
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
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def plot_confusion(confusion: list[list[int]], class_names: list[str], title: str, path: Path) -> None:
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
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
