"""The tutorial's question answered with statistics: repeated runs per model and budget, compared.

Reads the run groups the registry holds (`models/<name>/runs/<group>/<seed>/`, written by
`python -m training repeat`), and reports per group the spread of test accuracy over
seeds, where the tutorial's single figure falls, the difference between models with
Welch's 95% interval, accuracy at equal wall-clock time, and a conclusion generated from
those numbers alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from training.core.runs import RunRecord
from training.core.statistics import spread, welch

Runs = dict[str, dict[str, list[RunRecord]]]  # model -> group -> runs


def analyse(runs: Runs, names: Sequence[str]) -> dict[str, Any] | None:
    """Statistics for the named models that have recorded runs; None when fewer than one has."""
    present = [name for name in names if runs.get(name)]
    if not present:
        return None
    groups = {name: {group: _group(records) for group, records in runs[name].items()} for name in present}
    base, base_group = present[0], _base_group(runs[present[0]])
    differences = [
        _difference(name, group, runs[name][group], base, base_group, runs[base][base_group])
        for name in present[1:]
        for group in sorted(runs[name], key=_epochs)
        if len(runs[name][group]) > 1 and len(runs[base][base_group]) > 1
    ]
    budget = min(group["training_seconds"] for model in groups.values() for group in model.values())
    equal_time = {
        f"{name}/{group}": _accuracy_within(records, budget)
        for name in present
        for group, records in runs[name].items()
    }
    return {
        "models": groups,
        "base": {"model": base, "group": base_group},
        "differences": differences,
        "equal_wall_clock": {"training_seconds": budget, "val_accuracy": equal_time},
        "conclusion": _conclusion(groups, base, base_group, differences, budget, equal_time),
    }


def _epochs(group: str) -> int:
    digits = group.rsplit("-", 1)[-1]
    return int(digits) if digits.isdigit() else 0


def _base_group(groups: dict[str, list[RunRecord]]) -> str:
    """The group that follows the tutorial's budget when a reference names one, else the largest."""
    for group, records in groups.items():
        reference = records[0].metrics.reference
        if reference is not None and records[0].metrics.epochs == reference.epochs:
            return group
    return max(groups, key=lambda group: (len(groups[group]), _epochs(group)))


def _group(records: list[RunRecord]) -> dict[str, Any]:
    accuracies = [record.metrics.test_accuracy for record in records]
    summary = spread(accuracies)
    reference = records[0].metrics.reference
    result: dict[str, Any] = {
        "epochs": records[0].metrics.epochs,
        "seeds": [record.seed for record in records],
        "test_accuracies": accuracies,
        "n": summary.n,
        "mean": summary.mean,
        "sd": summary.sd,
        "ci95": [summary.ci_low, summary.ci_high] if summary.ci_low is not None else None,
        "training_seconds": float(np.mean([record.metrics.training_seconds for record in records])),
        "curve": _curve(records),
        "tutorial": None,
    }
    if reference is not None:
        figure = reference.test_accuracy
        position = "inside"
        if summary.ci_low is not None and summary.ci_high is not None:
            position = "above" if figure > summary.ci_high else "below" if figure < summary.ci_low else "inside"
        result["tutorial"] = {
            "test_accuracy": figure,
            "epochs": reference.epochs,
            "position_vs_ci95": position,
            "runs_below": sum(accuracy < figure for accuracy in accuracies),
            "z": (figure - summary.mean) / summary.sd if summary.sd > 0 else None,
        }
    return result


def _curve(records: list[RunRecord]) -> list[dict[str, float]]:
    """Validation accuracy per epoch, mean and sd over seeds, with the mean cumulative training time."""
    epochs = min(len(record.metrics.history) for record in records)
    points = []
    for index in range(epochs):
        values = [float(record.metrics.history[index].get("val_accuracy", np.nan)) for record in records]
        seconds = [
            sum(float(row["train_seconds"]) for row in record.metrics.history[: index + 1]) for record in records
        ]
        points.append(
            {
                "epoch": index + 1,
                "mean": float(np.mean(values)),
                "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                "seconds": float(np.mean(seconds)),
            }
        )
    return points


def _accuracy_within(records: list[RunRecord], budget: float) -> float | None:
    """Mean validation accuracy at the last epoch each run finished within `budget` training seconds."""
    reached = []
    for record in records:
        elapsed, value = 0.0, None
        for row in record.metrics.history:
            elapsed += float(row["train_seconds"])
            if elapsed > budget * 1.0001:
                break
            value = float(row["val_accuracy"])
        if value is not None:
            reached.append(value)
    return float(np.mean(reached)) if reached else None


def _difference(
    name: str, group: str, records: list[RunRecord], base: str, base_group: str, base_records: list[RunRecord]
) -> dict[str, Any]:
    result = welch([r.metrics.test_accuracy for r in records], [r.metrics.test_accuracy for r in base_records])
    return {
        "model": name,
        "group": group,
        "against": base,
        "against_group": base_group,
        "mean": result.mean,
        "ci95": [result.ci_low, result.ci_high],
        "p_value": result.p_value,
        "degrees_of_freedom": result.degrees_of_freedom,
        "method": result.method,
        "significant": result.significant,
    }


def _points(value: float) -> str:
    return f"{value * 100:.1f}"


def _conclusion(
    groups: dict[str, dict[str, dict[str, Any]]],
    base: str,
    base_group: str,
    differences: list[dict[str, Any]],
    budget: float,
    equal_time: dict[str, float | None],
) -> str:
    sentences = []
    for name, by_group in groups.items():
        for stats in sorted(by_group.values(), key=lambda group: int(group["epochs"])):
            text = f"{name} at {stats['epochs']} epochs scores {stats['mean']:.2%}"
            if stats["ci95"]:
                low, high = stats["ci95"]
                text += f" (sd {_points(stats['sd'])} points over {stats['n']} seeds, 95% CI {low:.2%} to {high:.2%})"
            tutorial = stats["tutorial"]
            if tutorial and tutorial["epochs"] == stats["epochs"]:
                figure, position = tutorial["test_accuracy"], tutorial["position_vs_ci95"]
                text += (
                    f"; the tutorial's single run, {figure:.2%}, lies {position} that interval "
                    f"and above {tutorial['runs_below']} of the {stats['n']} runs"
                )
            sentences.append(text + ".")
    by_model: dict[str, list[dict[str, Any]]] = {}
    for difference in differences:
        by_model.setdefault(difference["model"], []).append(difference)
    base_epochs = groups[base][base_group]["epochs"]
    for name, items in by_model.items():
        parts = [_describe_difference(item, groups, base, base_epochs) for item in items]
        sentences.append("; ".join(parts) + ", by Welch's t-test.")
        sentences.append(_verdict(name, items, groups, base, base_epochs))
    reached = ", ".join(
        f"{key.replace('/epochs-', ' at ')} epochs {value:.2%}"
        for key, value in equal_time.items()
        if value is not None
    )
    if reached:
        sentences.append(
            f"At equal training time ({budget:.0f} s, the shortest group's), validation accuracy is: {reached}."
        )
    return " ".join(sentence for sentence in sentences if sentence)


def _describe_difference(item: dict[str, Any], groups: dict[str, Any], base: str, base_epochs: int) -> str:
    epochs = groups[item["model"]][item["group"]]["epochs"]
    low, high = item["ci95"]
    size = abs(item["mean"])
    if item["significant"]:
        side = "above" if item["mean"] > 0 else "below"
        relation = f"is {_points(size)} points {side} {base} at {base_epochs} epochs ("
    else:
        relation = f"is within noise of {base} at {base_epochs} epochs ({item['mean'] * 100:+.1f} points, "
    p_value = "p < 0.001" if item["p_value"] < 0.001 else f"p = {item['p_value']:.3f}"
    interval = f"95% CI {low * 100:+.1f} to {high * 100:+.1f}, {p_value})"
    return f"{item['model']} at {epochs} epochs {relation}{interval}"


def _verdict(name: str, items: list[dict[str, Any]], groups: dict[str, Any], base: str, base_epochs: int) -> str:
    """Does training length explain the gap? Compare the shorter budget with the equal one."""
    by_epochs = {groups[name][item["group"]]["epochs"]: item for item in items}
    equal = by_epochs.get(base_epochs)
    shorter = [item for epochs, item in by_epochs.items() if epochs < base_epochs]
    if equal is None or not shorter:
        return ""
    short = shorter[0]
    if not (short["significant"] and short["mean"] < 0):
        return f"At the shorter budget {name} is not measurably behind {base}, so there is no gap to explain."
    if equal["significant"] and equal["mean"] > 0:
        return (
            f"The gap is explained by training length: given as many epochs as {base}, {name} is "
            f"{_points(equal['mean'])} points ahead of it."
        )
    if not equal["significant"]:
        return (
            f"The gap is explained by training length: given as many epochs as {base}, {name} is no longer "
            "measurably behind it (what remains is within the seeds' noise)."
        )
    return (
        f"The gap is not explained by training length alone: with as many epochs as {base}, {name} is still "
        f"{_points(-equal['mean'])} points behind."
    )
