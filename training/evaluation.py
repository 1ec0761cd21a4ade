"""The test-set evaluation of a finished run, through the service's own forward pass."""

from __future__ import annotations

import time
from dataclasses import dataclass

import keras
import numpy as np

from training.core.forward import make_forward, predict_in_batches
from training.core.preprocessing import TestTimeAugmentation
from training.data import Cifar10
from training.recipes import Recipe


@dataclass(frozen=True)
class TestResults:
    """Accuracy, cross-entropy, per-class accuracy and the confusion matrix (rows = true class)."""

    __test__ = False  # Not a pytest test class, despite the name.

    test_accuracy: float
    test_loss: float
    test_images: int
    per_class_accuracy: dict[str, float]
    confusion_matrix: list[list[int]]


@dataclass(frozen=True)
class Evaluation:
    served: TestResults  # With the recipe's test-time augmentation: what the service answers.
    single_view: TestResults | None  # Without it, when the recipe uses one (else None).
    seconds: float  # Wall time of the served evaluation.


def evaluate(model: keras.Model, recipe: Recipe, dataset: Cifar10) -> Evaluation:
    start = time.perf_counter()
    served = _results(model, recipe, recipe.test_time_augmentation, dataset)
    seconds = time.perf_counter() - start
    single_view = None
    if recipe.test_time_augmentation is not TestTimeAugmentation.NONE:
        single_view = _results(model, recipe, TestTimeAugmentation.NONE, dataset)
    return Evaluation(served, single_view, seconds)


def _results(model: keras.Model, recipe: Recipe, tta: TestTimeAugmentation, dataset: Cifar10) -> TestResults:
    forward = make_forward(model, recipe.scaling, tta)
    return test_results(predict_in_batches(forward, dataset.x_test), dataset.y_test, dataset.class_names)


def test_results(probabilities: np.ndarray, labels: np.ndarray, class_names: list[str]) -> TestResults:
    predicted = probabilities.argmax(axis=1)
    count = len(class_names)
    confusion = np.zeros((count, count), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    picked = probabilities[np.arange(len(labels)), labels]
    return TestResults(
        test_accuracy=float((predicted == labels).mean()),
        test_loss=float(-np.log(np.clip(picked, 1e-7, 1.0)).mean()),
        test_images=len(labels),
        per_class_accuracy={name: float(acc) for name, acc in zip(class_names, per_class, strict=True)},
        confusion_matrix=confusion.tolist(),
    )


test_results.__test__ = False  # type: ignore[attr-defined]  # Not a pytest test, despite the name.
