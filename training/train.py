"""Train one architecture on CIFAR-10 and publish the result as the next model version.

A run is: build and initialise the network, `model.fit` with per-epoch backups,
then evaluate -> report -> write (`evaluation.py`, `reports.py`, the store's
`save_version`). The backup is discarded only once the version is published.
With TF_CONFIG set, the same run goes over a cluster (`distributed.py`): the same
recipe, model and callbacks, its own training loop, and only the chief publishes.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from training import augment, checkpoints, distributed, reports
from training.architectures import Architecture, get_architecture
from training.callbacks import EpochTimer, InterruptBetweenBatches, Lookahead
from training.core import artifacts, runs
from training.core.records import Metrics, Summary
from training.data import Cifar10, calibration_split, load_cifar10
from training.evaluation import Evaluation, evaluate
from training.export import write_exports
from training.feedback import load_extra_data
from training.optimizers import make_optimizer
from training.pipeline import TrainingData, evaluation_batches, training_batches
from training.provenance import RunDescription, describe_run, environment
from training.recipes import Recipe
from training.robustness import CORRUPTION_IMAGES


@dataclass(frozen=True)
class TrainOptions:
    architecture: str
    models_dir: Path = Path("models")
    data: Path | None = None
    epochs: int | None = None  # None: the recipe's.
    batch_size: int | None = None
    learning_rate: float | None = None  # None: the recipe's (the peak, for a one-cycle schedule).
    seed: int = 0
    limit: int | None = None  # Train on the first N training images only.
    calibration_holdout: int | None = None  # None: the recipe's.
    jpeg_fraction: float | None = None  # None: the recipe's share of JPEG-re-encoded training images.
    corruption_fraction: float | None = None  # None: the recipe's share of noisy, blurred or flattened images.
    augmix_fraction: float | None = None  # None: the recipe's share of AugMix-style mixed images.
    precision: str | None = None  # None: the recipe's Keras dtype policy for training.
    init_from: Path | None = None  # Fine-tune: start from this version's weights instead of the recipe's init.
    extra_data: Path | None = None  # Labelled images to train on too (`python -m training feedback-dataset`).
    corruption_images: int = CORRUPTION_IMAGES  # Test images per corruption and severity in the report.
    run_group: str | None = None  # Record the run in models/<name>/runs/<group>/<seed>/ instead of publishing.
    verbose: int | None = None  # Keras verbosity; None: progress bar on a terminal, a line per epoch otherwise.


def train(options: TrainOptions) -> Path | None:
    """Run the architecture's recipe (with any overrides) and return the published version folder
    (None on a cluster worker that is not the chief: it publishes nothing)."""
    cluster = distributed.cluster_from_env()
    strategy = distributed.make_strategy() if cluster else None  # Before any other TensorFlow operation.
    is_chief = cluster is None or cluster.is_chief
    if cluster:
        print(f"Distributed run: this process is the {cluster.describe()}", flush=True)
    architecture = get_architecture(options.architecture)
    recipe = _recipe_with_overrides(architecture.recipe, options)
    ran_on = environment()  # At the start: the commit whose code this run executes.
    dataset = load_cifar10(options.data)
    x_train, y_train = without_calibration_split(dataset, recipe.calibration_holdout, options.seed)
    if options.limit:
        x_train, y_train = x_train[: options.limit], y_train[: options.limit]
    extra = load_extra_data(options.extra_data) if options.extra_data else None
    if extra is not None:  # After the hold-out split: the temperature is still fitted on CIFAR-10 images only.
        x_train, y_train = np.concatenate([x_train, extra[0]]), np.concatenate([y_train, extra[1]])
        print(f"Training on {len(extra[0])} extra labelled images from {options.extra_data}", flush=True)

    keras.utils.set_random_seed(options.seed)
    training_data = training_batches(x_train, y_train, recipe, options.seed)
    with strategy.scope() if strategy else contextlib.nullcontext():  # Variables mirrored on every worker.
        model = build_for_training(architecture, recipe.precision)
        if options.init_from:
            model.set_weights(artifacts.load_keras_model(options.init_from).get_weights())
        elif architecture.initialize:  # Deterministic (the data's statistics): identical on every worker.
            architecture.initialize(model, x_train, recipe.scaling)
        model.compile(
            optimizer=make_optimizer(recipe, training_data.steps_per_epoch),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
            metrics=["accuracy"],
            steps_per_execution=recipe.steps_per_execution,
        )
        if strategy:
            model.optimizer.build(model.trainable_variables)
    init_from = str(options.init_from) if options.init_from else None
    run = describe_run(architecture.name, recipe, options.seed, options.limit, dataset, len(x_train), init_from, extra)
    backup = _backup_folder(options, architecture.name)
    if is_chief:
        for stale in artifacts.remove_stale_staging(options.models_dir, architecture.name):
            print(f"Removed {stale.name}, left by a run that was killed while publishing", flush=True)
        checkpoints.prepare(backup, run)  # Workers only read the chief's backup.
    if strategy:
        distributed.barrier(strategy)  # The chief has prepared (or discarded) the backup before anyone reads it.
    if checkpoints.has_fitted_weights(backup):  # Killed while evaluating or publishing: training is done.
        print("Training had finished; evaluating and publishing again", flush=True)
        checkpoints.load_fitted_weights(model, backup)
    elif strategy:
        _fit_distributed(model, recipe, training_data, dataset, backup, strategy, is_chief)
    else:
        _fit(model, recipe, training_data, dataset, backup, options.verbose)
    if not is_chief:
        print("Training finished; the chief evaluates and publishes", flush=True)
        return None
    if not checkpoints.has_fitted_weights(backup):
        checkpoints.save_fitted_weights(model, backup)
    history = checkpoints.read_history(backup)
    finished = FinishedRun(model, architecture, run, ran_on, history, dataset, options.corruption_images)
    if options.run_group:
        published = _record_run(finished, options.models_dir, options.run_group)
    else:
        published = _publish(finished, options.models_dir)
    checkpoints.discard(backup)
    return published


def _fit(
    model: keras.Model, recipe: Recipe, data: TrainingData, dataset: Cifar10, backup: Path, verbose: int | None
) -> None:
    validation = evaluation_batches(dataset.x_test, dataset.y_test, recipe) if recipe.validate_each_epoch else None
    interrupt = InterruptBetweenBatches()
    total_steps = recipe.epochs * data.steps_per_epoch
    lookahead = [Lookahead(recipe.lookahead_every, total_steps)] if recipe.lookahead_every else []
    with interrupt.installed():
        model.fit(
            data.batches,
            epochs=recipe.epochs,
            steps_per_epoch=data.steps_per_epoch if data.endless else None,
            validation_data=validation,
            callbacks=[
                interrupt,
                *lookahead,  # Before validation and backups, so both see the averaged weights.
                EpochTimer(),  # Before the logger, so that it sees the timings.
                *checkpoints.callbacks(backup),
            ],
            shuffle=False,  # The dataset reshuffles itself every epoch.
            verbose=_verbosity(verbose),
        )


def _fit_distributed(
    model: keras.Model,
    recipe: Recipe,
    data: TrainingData,
    dataset: Cifar10,
    backup: Path,
    strategy: Any,
    is_chief: bool,
) -> None:
    """The same callbacks as `_fit` (the history log on the chief only), driven by the cluster's loop."""
    validation = evaluation_batches(dataset.x_test, dataset.y_test, recipe) if recipe.validate_each_epoch else None
    total_steps = recipe.epochs * data.steps_per_epoch
    lookahead = [Lookahead(recipe.lookahead_every, total_steps)] if recipe.lookahead_every else []
    history = [keras.callbacks.CSVLogger(str(backup / checkpoints.HISTORY_FILE), append=True)] if is_chief else []
    callbacks = [*lookahead, EpochTimer(), *history]
    distributed.fit(
        model, data, recipe.epochs, recipe.label_smoothing, strategy, callbacks, backup, is_chief, validation
    )


@dataclass(frozen=True)
class FinishedRun:
    """What a run that finished `fit` hands to evaluation and reporting."""

    model: keras.Model
    architecture: Architecture
    run: RunDescription
    ran_on: dict[str, str]
    history: list[dict[str, int | float]]
    dataset: Cifar10
    corruption_images: int = CORRUPTION_IMAGES

    def evaluate(self) -> tuple[Evaluation, keras.Model, Summary, Metrics]:
        """Evaluate -> report: the evaluation, the optimizer-free model, its layer table and the metrics."""
        recipe = self.architecture.recipe  # Overrides never change scaling or TTA.
        holdout = int(self.run.recipe["calibration_holdout"])
        seen = augment.seen_corruptions(self.run.recipe)
        serving = _without_optimizer(self.model, self.architecture)
        evaluation = evaluate(  # The float32 copy that is published, whatever the training's precision.
            serving,
            recipe.scaling,
            recipe.test_time_augmentation,
            self.dataset,
            holdout,
            self.run.seed,
            seen,
            self.corruption_images,
        )
        metrics = reports.build_metrics(self.run, self.ran_on, self.history, evaluation, self.architecture.reference)
        return evaluation, serving, reports.layer_summary(serving), metrics


def _publish(finished: FinishedRun, models_dir: Path) -> Path:
    """Evaluate -> report -> write a new version (with its SavedModel)."""
    evaluation, serving, summary, metrics = finished.evaluate()
    architecture, dataset = finished.architecture, finished.dataset
    metadata = reports.build_metadata(finished.run, architecture.description, dataset.class_names, summary, evaluation)
    return artifacts.save_version(
        models_dir,
        serving,
        metadata=metadata,
        summary=summary,
        metrics=metrics,
        plots=reports.plots(finished.history, evaluation, dataset.class_names, architecture.name),
        extras=lambda staging: write_exports(serving, metadata, staging),
    )


def _record_run(finished: FinishedRun, models_dir: Path, group: str) -> Path:
    """Evaluate -> report -> record one seed of a run group (metrics and summary, no weights)."""
    _, _, summary, metrics = finished.evaluate()
    name, seed = finished.architecture.name, finished.run.seed
    return runs.save_run(models_dir, name, group, seed, summary, metrics)


def _backup_folder(options: TrainOptions, name: str) -> Path:
    if options.run_group:
        return runs.checkpoint_dir(options.models_dir, name, options.run_group, options.seed)
    return artifacts.checkpoint_dir(options.models_dir, name)


def without_calibration_split(dataset: Cifar10, holdout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The training images minus those the temperature will be fitted on (none when holdout is 0)."""
    keep = np.ones(len(dataset.x_train), dtype=bool)
    keep[calibration_split(len(dataset.x_train), holdout, seed)] = False
    return dataset.x_train[keep], dataset.y_train[keep]


# TrainOptions fields that override the recipe's field of the same name when set (None: the recipe's).
RECIPE_OVERRIDES = (
    "epochs",
    "batch_size",
    "learning_rate",
    "calibration_holdout",
    "jpeg_fraction",
    "corruption_fraction",
    "augmix_fraction",
    "precision",
)


def _recipe_with_overrides(recipe: Recipe, options: TrainOptions) -> Recipe:
    changes = {field: getattr(options, field) for field in RECIPE_OVERRIDES}
    return replace(recipe, **{field: value for field, value in changes.items() if value is not None})


def _verbosity(requested: int | None) -> int:
    if requested is not None:
        return requested
    return 1 if sys.stdout.isatty() else 2


def build_for_training(architecture: Architecture, precision: str) -> keras.Model:
    """The network under the recipe's dtype policy. Under a mixed policy the last layer (the softmax)
    stays float32, as Keras' mixed-precision guide advises: the loss then reads float32 logits from
    it, not probabilities rounded to bfloat16's 8 significant bits."""
    default = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        model = architecture.build()
    finally:
        keras.config.set_dtype_policy(default)
    if precision != "float32":
        model.layers[-1].dtype_policy = "float32"
    return model


def _without_optimizer(model: keras.Model, architecture: Architecture) -> keras.Model:
    """An uncompiled float32 copy: serving needs weights and graph only (optimizer slots would double
    the file), computing in float32 whatever precision the network trained in (its weights already are)."""
    # Not clone_model or model_from_json: in Keras 3 both recompile the copy, optimizer included.
    serving = architecture.build()
    serving.set_weights(model.get_weights())
    return serving
