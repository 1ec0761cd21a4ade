"""Compare served models from their stored metrics, answering the tutorial's closing exercise.

The tutorial asks how model_2 compares with model_1: parameters, training time,
and loss and accuracy on the training and validation sets. `compare_models` puts
those numbers side by side and writes the answer as a short paragraph.
"""

from __future__ import annotations

from typing import Any

from app.experiments import analyse
from app.registry import ModelRegistry
from training.core.artifacts import Artifact


def compare_models(registry: ModelRegistry, names: list[str]) -> dict[str, Any]:
    """Numbers for the served version of each named model, and statistics over their repeated runs;
    raises ModelNotFound / ModelNotReady."""
    unique = list(dict.fromkeys(names))
    rows = [_row(registry.artifact(name)) for name in unique]
    statistics = analyse({name: registry.runs(name) for name in unique}, unique)
    return {"models": rows, "summary": describe(rows), "statistics": statistics}


def _row(artifact: Artifact) -> dict[str, Any]:
    metrics = artifact.metrics
    history = metrics.history
    last = history[-1] if history else {}
    return {
        "name": artifact.name,
        "version": artifact.version,
        "params": artifact.summary.total_params,
        "epochs": metrics.epochs,
        "seconds_per_epoch": metrics.seconds_per_epoch,
        "training_seconds": metrics.training_seconds,
        "images_per_second": metrics.images_per_second,
        "final_loss": last.get("loss"),
        "final_accuracy": last.get("accuracy"),
        "final_val_loss": last.get("val_loss"),
        "final_val_accuracy": last.get("val_accuracy"),
        "test_accuracy": metrics.test_accuracy,
        "test_loss": metrics.test_loss,
        "test_time_augmentation": metrics.test_time_augmentation.value,
        "temperature": artifact.metadata.temperature,
        "robustness": metrics.robustness,
        "ece": metrics.probability_scores.ece if metrics.probability_scores else None,
        "corruption": _corruption(artifact),
        "history": history,
    }


def _corruption(artifact: Artifact) -> dict[str, Any] | None:
    """The corruption benchmark's headline figures, or None for versions measured before it existed."""
    report = artifact.metrics.corruption
    if report is None:
        return None
    return {
        "mean_accuracy": report.mean_accuracy,
        "severity_5": report.by_severity["5"],
        "unseen_mean_accuracy": report.unseen_mean_accuracy,
        "ece": report.ece,
        "seen_in_training": report.seen_in_training,
    }


def describe(rows: list[dict[str, Any]]) -> str:
    """A paragraph in plain words; every number comes from the stored metrics."""
    first = rows[0]
    sentences = [_describe_one(first)]
    for other in rows[1:]:
        sentences.append(_describe_against(other, first))
    if len(rows) > 1:
        best = max(rows, key=lambda row: row["test_accuracy"])
        sentences.append(f"The most accurate on the test set is {best['name']} ({best['test_accuracy']:.2%}).")
    reported = [row for row in rows if row["robustness"] and row["ece"] is not None]
    if reported:
        figures = "; ".join(
            f"{row['name']} {row['robustness']['jpeg_q75']:.2%} (ECE {row['ece']:.3f})" for row in reported
        )
        sentences.append(f"Re-encoded as JPEG at quality 75, as phones send them, the test images score: {figures}.")
    damaged = [row for row in rows if row["corruption"]]
    if damaged:
        figures = "; ".join(
            f"{row['name']} {row['corruption']['mean_accuracy']:.2%} (ECE {row['corruption']['ece']:.3f})"
            for row in damaged
        )
        sentences.append(f"With noise, blur, fog, low contrast and 14 other kinds of damage: {figures}.")
    return " ".join(sentences)


def _describe_one(row: dict[str, Any]) -> str:
    text = (
        f"{row['name']} has {row['params']:,} parameters and trained for {row['epochs']} epochs "
        f"at {row['seconds_per_epoch']:.1f} s per epoch ({row['training_seconds'] / 60:.1f} min in all)"
    )
    if row["final_accuracy"] is not None:
        text += f"; it ended with training loss {row['final_loss']:.3f} and accuracy {row['final_accuracy']:.2%}"
    if row["final_val_accuracy"] is not None:
        text += f", validation loss {row['final_val_loss']:.3f} and accuracy {row['final_val_accuracy']:.2%}"
    return text + f", and scores {row['test_accuracy']:.2%} on the 10,000 test images."


def _describe_against(row: dict[str, Any], base: dict[str, Any]) -> str:
    name, base_name = row["name"], base["name"]
    parts = [
        f"{name} has {row['params']:,} parameters, {_relative(row['params'], base['params'])} {base_name}'s "
        f"{base['params']:,}",
        f"an epoch takes {row['seconds_per_epoch']:.1f} s, "
        f"{_ratio(row['seconds_per_epoch'], base['seconds_per_epoch'])} "
        f"{base_name}'s {base['seconds_per_epoch']:.1f} s, over {row['epochs']} epochs against {base['epochs']}",
    ]
    if row["final_accuracy"] is not None and base["final_accuracy"] is not None:
        parts.append(
            f"its final training loss is {row['final_loss']:.3f} (vs {base['final_loss']:.3f}) and training accuracy "
            f"{row['final_accuracy']:.2%} (vs {base['final_accuracy']:.2%})"
        )
    if row["final_val_accuracy"] is not None and base["final_val_accuracy"] is not None:
        parts.append(
            f"validation loss {row['final_val_loss']:.3f} (vs {base['final_val_loss']:.3f}) and validation accuracy "
            f"{row['final_val_accuracy']:.2%} (vs {base['final_val_accuracy']:.2%})"
        )
    gap = (row["test_accuracy"] - base["test_accuracy"]) * 100
    parts.append(
        f"its test accuracy is {row['test_accuracy']:.2%}, {abs(gap):.1f} points "
        f"{'above' if gap >= 0 else 'below'} {base_name}'s {base['test_accuracy']:.2%}"
    )
    return "; ".join(parts) + "."


def _relative(value: float, base: float) -> str:
    if base == 0 or value == base:
        return "the same as"
    change = (value - base) / base * 100
    return f"{abs(change):.0f}% {'more' if change > 0 else 'fewer'} than"


def _ratio(value: float, base: float) -> str:
    if base <= 0:
        return "compared with"
    ratio = value / base
    return f"{ratio:.1f}x" if ratio >= 1 else f"{1 / ratio:.1f}x less than"
