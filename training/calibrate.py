"""Post-hoc calibration: an already trained version, re-evaluated with a fitted temperature,
published as a new version (same weights, new metadata, metrics and plots).

`tta` optionally changes the test-time augmentation at the same time, for example
to the two-view `hflip` when bench/tta_views.py shows it within 0.1 point of the six
views at a third of the serving cost; the new version's stored accuracies are those
of exactly the forward pass it will serve.

Only for versions whose run held images out (`calibration_holdout` in its recorded
hyperparameters): the temperature must be fitted on images the network never saw,
and the split is re-derived from the recorded seed and size.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from training import augment, reports
from training.core import artifacts, records
from training.core.preprocessing import TestTimeAugmentation
from training.data import Cifar10, DatasetError, array_sha256, load_cifar10
from training.evaluation import evaluate
from training.export import write_exports


def load_holdout(artifact: artifacts.Artifact, data: Path | None) -> tuple[Cifar10, int, int]:
    """The dataset the version was trained on, with the size and seed of the images it held out.

    Re-derive the images with `training.data.calibration_split(len(x_train), size, seed)`.
    """
    holdout = int(artifact.metrics.hyperparameters.get("calibration_holdout", 0))
    if holdout <= 0:
        raise ValueError(
            f"{artifact.folder} was trained on every training image, so none is left that it never saw; "
            "retrain it with --calibration-holdout N"
        )
    dataset = load_cifar10(data)
    if array_sha256(dataset.x_train) != artifact.metrics.dataset.x_train_sha256:
        raise DatasetError(f"the dataset differs from the one {artifact.folder} was trained on (x_train checksum)")
    return dataset, holdout, int(artifact.metrics.hyperparameters["seed"])


def calibrate_version(
    source: Path,
    models_dir: Path,
    data: Path | None = None,
    tta: TestTimeAugmentation | None = None,
    fit_on_damaged: bool = False,
) -> Path:
    """Publish a calibrated copy of the version in `source` into `models_dir`; return its folder.

    `fit_on_damaged`: fit the temperature on the hold-out plus a damaged copy of it, so that
    damaged photos are not answered overconfidently (bench/shift_calibration.py measures it).
    """
    artifact = artifacts.load_artifact(source)
    metadata, metrics = artifact.metadata, artifact.metrics
    tta = TestTimeAugmentation(tta or metadata.test_time_augmentation)
    dataset, holdout, seed = load_holdout(artifact, data)
    model = artifacts.load_keras_model(source)
    seen = augment.seen_corruptions(metrics.hyperparameters)
    evaluation = evaluate(model, metadata.scaling, tta, dataset, holdout, seed, seen, fit_on_damaged=fit_on_damaged)

    single_view = evaluation.single_view
    new_metrics = metrics.model_copy(
        update={
            **reports.results_fields(evaluation),
            "test_accuracy_without_tta": single_view.test_accuracy if single_view else None,
            "test_loss_without_tta": single_view.test_loss if single_view else None,
            "evaluate_seconds": evaluation.seconds,
            "test_time_augmentation": tta,
        }
    )
    new_metadata = metadata.model_copy(
        update={
            "format_version": records.FORMAT_VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "test_accuracy": evaluation.served.test_accuracy,
            "temperature": evaluation.temperature,
            "tta_average": evaluation.average,
            "test_time_augmentation": tta,
        }
    )
    plots = reports.plots(metrics.history, evaluation, metadata.class_names, metadata.name)
    return artifacts.save_version(
        models_dir,
        model,
        new_metadata,
        artifact.summary,
        new_metrics,
        plots,
        extras=lambda staging: write_exports(model, new_metadata, staging),
    )
