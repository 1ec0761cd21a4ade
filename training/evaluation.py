"""Everything measured on images the network never trained on, once training ends.

In order: fit the temperature on the calibration hold-out (when the recipe keeps
one), build the served forward pass with it, score the 10,000 test images through
that forward pass (accuracy, per class, confusion, probability scores), and re-score
them as users send them (JPEG, downscaled). What is served is what is measured.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np

from training import augment, calibration, robustness
from training.core.forward import make_forward, predict_in_batches, view_logits
from training.core.preprocessing import Scaling, TestTimeAugmentation, TtaAverage
from training.core.records import CalibrationReport, CalibrationSplit, CorruptionReport, ProbabilityScores
from training.data import Cifar10, calibration_split

Curve = list[tuple[float, float, int]]


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
    served: TestResults  # Through the served forward pass: TTA and temperature included.
    single_view: TestResults | None  # Without TTA, when the recipe uses it (else None).
    seconds: float  # Wall time of the served test-set pass.
    temperature: float
    average: TtaAverage
    scores: ProbabilityScores  # Of the served probabilities.
    robustness: dict[str, float]  # Served accuracy per upload condition (training.robustness).
    corruption: CorruptionReport  # Served accuracy on the common-corruption benchmark.
    calibration: CalibrationReport | None  # None when nothing was held out to fit a temperature on.
    reliability: dict[str, Curve]  # Reliability-diagram points: "uncalibrated" and, if fitted, "calibrated".


def evaluate(
    model: object,
    scaling: Scaling,
    tta: TestTimeAugmentation,
    dataset: Cifar10,
    holdout: int,
    seed: int,
    seen_corruptions: frozenset[str] = frozenset(),
    corruption_images: int = robustness.CORRUPTION_IMAGES,
    fit_on_damaged: bool = False,
) -> Evaluation:
    """`seen_corruptions`: the benchmark's corruptions the training used as augmentation (reported apart);
    `corruption_images`: test images per corruption and severity; `fit_on_damaged`: fit the temperature
    on the hold-out plus a damaged copy of it (`training.augment.damaged_copy`)."""
    fitted = _fit(model, scaling, tta, dataset, holdout, seed, fit_on_damaged) if holdout else None
    temperature, average = (fitted[0], fitted[1]) if fitted else (1.0, TtaAverage.PROBABILITIES)

    forward = make_forward(model, scaling, tta, temperature, average)
    start = time.perf_counter()
    probabilities = predict_in_batches(forward, dataset.x_test)
    seconds = time.perf_counter() - start
    served = test_results(probabilities, dataset.y_test, dataset.class_names)
    single_view = None
    if tta is not TestTimeAugmentation.NONE:
        plain = make_forward(model, scaling, TestTimeAugmentation.NONE, temperature, average)
        single_view = test_results(predict_in_batches(plain, dataset.x_test), dataset.y_test, dataset.class_names)

    def predict(images: np.ndarray) -> np.ndarray:
        return predict_in_batches(forward, images)

    conditions = robustness.accuracy_under_conditions(predict, dataset.x_test, dataset.y_test)
    corruption = robustness.corruption_report(
        predict, dataset.x_test, dataset.y_test, seen_corruptions, corruption_images
    )
    served_scores = calibration.scores(probabilities, dataset.y_test)
    reliability = {"uncalibrated": calibration.reliability_curve(probabilities, dataset.y_test)}
    report = None
    if fitted:
        report = fitted[2].model_copy(update={"after": served_scores})
        reliability = {
            "uncalibrated": fitted[3],
            "calibrated": calibration.reliability_curve(probabilities, dataset.y_test),
        }
    return Evaluation(
        served=served,
        single_view=single_view,
        seconds=seconds,
        temperature=temperature,
        average=average,
        scores=served_scores,
        robustness={"lossless": served.test_accuracy, **conditions},
        corruption=corruption,
        calibration=report,
        reliability=reliability,
    )


def _fit(
    model: object,
    scaling: Scaling,
    tta: TestTimeAugmentation,
    dataset: Cifar10,
    holdout: int,
    seed: int,
    fit_on_damaged: bool = False,
) -> tuple[float, TtaAverage, CalibrationReport, Curve]:
    """Fit T for each way of averaging views on the hold-out; keep the one with the lower hold-out NLL.

    The test set only reports (`alternatives`); it never chooses.
    """
    indices = calibration_split(len(dataset.x_train), holdout, seed)
    fit_logits, weights = view_logits(model, scaling, tta, dataset.x_train[indices])
    fit_labels = dataset.y_train[indices]
    if fit_on_damaged:  # Photos in use are often damaged: fit on both, so damaged ones are not overconfident.
        damaged_logits, _ = view_logits(model, scaling, tta, augment.damaged_copy(dataset.x_train[indices], seed))
        fit_logits = np.concatenate([fit_logits, damaged_logits], axis=1)
        fit_labels = np.concatenate([fit_labels, fit_labels])
    test_logits, _ = view_logits(model, scaling, tta, dataset.x_test)
    fitted: dict[TtaAverage, tuple[float, float]] = {}
    alternatives: dict[str, ProbabilityScores] = {}
    for average in TtaAverage:
        temperature = calibration.fit_temperature(fit_logits, weights, fit_labels, average)
        holdout_nll = calibration.negative_log_likelihood(
            calibration.combine(fit_logits, weights, temperature, average), fit_labels
        )
        fitted[average] = (temperature, holdout_nll)
        test_probabilities = calibration.combine(test_logits, weights, temperature, average)
        alternatives[average.value] = calibration.scores(test_probabilities, dataset.y_test)
    chosen = min(fitted, key=lambda average: fitted[average][1])
    split = split_record(indices, holdout, seed, len(dataset.x_train))
    uncalibrated = calibration.combine(test_logits, weights, 1.0, TtaAverage.PROBABILITIES)
    before = calibration.scores(uncalibrated, dataset.y_test)
    report = CalibrationReport(
        temperature=fitted[chosen][0],
        tta_average=chosen,
        split=split,
        before=before,
        after=alternatives[chosen.value],  # Replaced by the served pass's own scores in `evaluate`.
        alternatives=alternatives,
        fitted_on_damaged=fit_on_damaged,
    )
    return fitted[chosen][0], chosen, report, calibration.reliability_curve(uncalibrated, dataset.y_test)


def split_record(indices: np.ndarray, size: int, seed: int, train_images: int) -> CalibrationSplit:
    """What metadata records of a hold-out, so a reader can re-derive it and check it is the same."""
    digest = hashlib.sha256(indices.astype(np.int64).tobytes()).hexdigest()
    return CalibrationSplit(size=size, seed=seed, train_images=train_images, indices_sha256=digest)


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
