"""Train one architecture on CIFAR-10 and publish the result as the next model version."""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from training import artifacts, reports
from training.architectures import Architecture, Recipe, get_architecture
from training.callbacks import EpochTimer, InterruptBetweenBatches, Lookahead
from training.data import Cifar10, array_sha256, load_cifar10
from training.inference import make_forward, predict_in_batches
from training.optimizers import make_optimizer
from training.pipeline import evaluation_batches, training_batches
from training.preprocessing import INPUT_SHAPE

HISTORY_FILE = "history.csv"
RUN_FILE = "run.json"


@dataclass(frozen=True)
class TrainOptions:
    architecture: str
    models_dir: Path = Path("models")
    data: Path | None = None
    epochs: int | None = None  # None: the recipe's.
    batch_size: int | None = None
    seed: int = 0
    limit: int | None = None  # Train on the first N training images only.
    verbose: int | None = None  # Keras verbosity; None: progress bar on a terminal, a line per epoch otherwise.


def train(options: TrainOptions) -> Path:
    """Run the architecture's recipe (with any overrides) and return the published version folder."""
    architecture = get_architecture(options.architecture)
    recipe = _recipe_with_overrides(architecture.recipe, options)
    environment = _environment()  # At the start: the commit whose code this run executes.
    dataset = load_cifar10(options.data)
    x_train, y_train = dataset.x_train, dataset.y_train
    if options.limit:
        x_train, y_train = x_train[: options.limit], y_train[: options.limit]

    keras.utils.set_random_seed(options.seed)
    training_data = training_batches(x_train, y_train, recipe, options.seed)
    steps_per_epoch = training_data.steps_per_epoch
    model = architecture.build()
    if architecture.initialize:
        architecture.initialize(model, x_train, recipe.scaling)
    model.compile(
        optimizer=make_optimizer(recipe, steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
        metrics=["accuracy"],
    )
    run = _run_description(architecture, recipe, options, dataset, len(x_train))
    checkpoints = _prepare_checkpoints(options.models_dir, architecture.name, run)
    validation = evaluation_batches(dataset.x_test, dataset.y_test, recipe) if recipe.validate_each_epoch else None
    interrupt = InterruptBetweenBatches()
    lookahead = [Lookahead(recipe.lookahead_every, recipe.epochs * steps_per_epoch)] if recipe.lookahead_every else []
    with interrupt.installed():
        model.fit(
            training_data.batches,
            epochs=recipe.epochs,
            steps_per_epoch=steps_per_epoch if training_data.endless else None,
            validation_data=validation,
            callbacks=[
                interrupt,
                *lookahead,  # Before validation and backups, so both see the averaged weights.
                EpochTimer(),  # Before the logger, so that it sees the timings.
                keras.callbacks.CSVLogger(str(checkpoints / HISTORY_FILE), append=True),
                keras.callbacks.BackupAndRestore(str(checkpoints / "backup")),
            ],
            shuffle=False,  # The dataset reshuffles itself every epoch.
            verbose=_verbosity(options.verbose),
        )
    history = _read_history(checkpoints / HISTORY_FILE)
    published = _publish(
        model, architecture, recipe, run | {"environment": environment}, history, dataset, options.models_dir
    )
    shutil.rmtree(checkpoints, ignore_errors=True)
    return published


def _recipe_with_overrides(recipe: Recipe, options: TrainOptions) -> Recipe:
    changes: dict[str, Any] = {}
    if options.epochs is not None:
        changes["epochs"] = options.epochs
    if options.batch_size is not None:
        changes["batch_size"] = options.batch_size
    return replace(recipe, **changes)


def _verbosity(requested: int | None) -> int:
    if requested is not None:
        return requested
    return 1 if sys.stdout.isatty() else 2


def _run_description(
    architecture: Architecture, recipe: Recipe, options: TrainOptions, dataset: Cifar10, train_images: int
) -> dict[str, Any]:
    """Everything that identifies a run; a backup is resumed only when this matches."""
    return {
        "architecture": architecture.name,
        "recipe": _recipe_dict(recipe),
        "seed": options.seed,
        "limit": options.limit,
        "train_images": train_images,
        "dataset": {
            "source": dataset.source,
            "x_train_sha256": array_sha256(dataset.x_train),
            "x_test_sha256": array_sha256(dataset.x_test),
            "labels_sha256": array_sha256(np.concatenate([dataset.y_train, dataset.y_test])),
        },
    }


def _recipe_dict(recipe: Recipe) -> dict[str, Any]:
    return {key: (value.value if hasattr(value, "value") else value) for key, value in asdict(recipe).items()}


def _prepare_checkpoints(models_dir: Path, name: str, run: dict[str, Any]) -> Path:
    """Reuse the backup of an interrupted identical run; start afresh for anything else."""
    folder = artifacts.checkpoint_dir(models_dir, name)
    run_file = folder / RUN_FILE
    if folder.exists():
        previous = json.loads(run_file.read_text()) if run_file.is_file() else None
        if previous == run:
            print(f"Resuming the interrupted run from {folder}", flush=True)
            return folder
        print(f"Discarding a backup of a different run in {folder}", flush=True)
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    run_file.write_text(json.dumps(run, indent=2))
    return folder


def _read_history(path: Path) -> list[dict[str, float]]:
    """Per-epoch rows; an epoch repeated after a resume keeps its last (completed) row."""
    with path.open(newline="") as handle:
        rows = [{key: float(value) for key, value in row.items() if value != ""} for row in csv.DictReader(handle)]
    by_epoch: dict[int, dict[str, float]] = {}
    for row in rows:
        row["epoch"] = int(row["epoch"]) + 1  # Keras counts from 0; people count from 1.
        by_epoch[row["epoch"]] = row
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def _publish(
    model: keras.Model,
    architecture: Architecture,
    recipe: Recipe,
    run: dict[str, Any],
    history: list[dict[str, float]],
    dataset: Cifar10,
    models_dir: Path,
) -> Path:
    """Evaluate on the test set through the serving forward pass, then write every file."""
    evaluate_start = time.perf_counter()
    results = _evaluate(model, recipe, recipe.test_time_augmentation, dataset)
    evaluate_seconds = time.perf_counter() - evaluate_start
    if recipe.test_time_augmentation != "none":
        plain = _evaluate(model, recipe, "none", dataset)
        results["test_accuracy_without_tta"] = plain["test_accuracy"]
        results["test_loss_without_tta"] = plain["test_loss"]

    serving = _without_optimizer(model, architecture)
    summary = reports.layer_summary(serving)
    train_seconds = sum(row["train_seconds"] for row in history)
    metrics = {
        "architecture": architecture.name,
        "history": history,
        **results,
        "test_time_augmentation": recipe.test_time_augmentation,
        "evaluate_seconds": evaluate_seconds,
        "epochs": len(history),
        "training_seconds": train_seconds,
        "wall_seconds": sum(row["seconds"] for row in history),
        "seconds_per_epoch": train_seconds / max(len(history), 1),
        "images_per_second": run["train_images"] * len(history) / max(train_seconds, 1e-9),
        "hyperparameters": run["recipe"]
        | {"seed": run["seed"], "limit": run["limit"], "train_images": run["train_images"]},
        "dataset": run["dataset"],
        "environment": run["environment"],
        "reference": asdict(architecture.reference) if architecture.reference else None,
    }
    metadata = {
        "format_version": artifacts.FORMAT_VERSION,
        "name": architecture.name,
        "architecture": architecture.name,
        "description": architecture.description,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "input_shape": list(INPUT_SHAPE),
        "input_dtype": "uint8",
        "scaling": recipe.scaling.value,
        "test_time_augmentation": recipe.test_time_augmentation,
        "class_names": dataset.class_names,
        "params": summary["total_params"],
        "test_accuracy": results["test_accuracy"],
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
    }
    with artifacts.new_version(models_dir, architecture.name) as staged:
        serving.save(staged.path / artifacts.MODEL_FILE)
        artifacts.write_json(staged.path, artifacts.SUMMARY_FILE, summary)
        artifacts.write_json(staged.path, artifacts.METRICS_FILE, metrics)
        artifacts.write_json(staged.path, artifacts.METADATA_FILE, metadata)
        title = f"{architecture.name}: test accuracy {results['test_accuracy']:.2%}"
        reports.plot_curves(history, title, staged.path / artifacts.CURVES_FILE)
        reports.plot_confusion(
            results["confusion_matrix"], dataset.class_names, title, staged.path / artifacts.CONFUSION_FILE
        )
    assert staged.published is not None
    return staged.published


def _evaluate(model: keras.Model, recipe: Recipe, tta: str, dataset: Cifar10) -> dict[str, Any]:
    forward = make_forward(model, recipe.scaling, tta)
    return reports.test_results(predict_in_batches(forward, dataset.x_test), dataset.y_test, dataset.class_names)


def _without_optimizer(model: keras.Model, architecture: Architecture) -> keras.Model:
    """An uncompiled copy: serving needs weights and graph only; optimizer slots would double the file."""
    # Not clone_model or model_from_json: in Keras 3 both recompile the copy, optimizer included.
    serving = architecture.build()
    serving.set_weights(model.get_weights())
    return serving


def _environment() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "machine": platform.machine(),
        "processor_count": str(os.cpu_count()),
        "git_commit": _git_commit(),
    }


def _git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() + ("-dirty" if dirty else "")
