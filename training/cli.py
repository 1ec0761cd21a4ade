"""`python -m training COMMAND`: the training side's command line.

train           train an architecture and publish a new version (compiled copies included)
calibrate       fit a temperature for a version and publish the calibrated copy
quantize        publish an int8 copy of a version, with what it scores
novelty         fit the novelty score for a version and publish the copy that answers it
repeat          train a recipe with several seeds, as a run group (the comparison's evidence)
serve-policy    write a model's serving.json: which versions serve, pin, labels
list            the architectures and their recipes
export          add the compiled copies (SavedModel, OpenVINO IR) older versions lack
export-samples  write CIFAR-10 test images as PNGs for the web page
feedback-dataset  write the images users labelled in the prediction log as extra training data
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from training import policy_cli
from training.architectures import ARCHITECTURES
from training.core.preprocessing import TestTimeAugmentation
from training.data import DATA_ENV_VAR, DatasetError
from training.distributed import WorkerFailed
from training.train import TrainOptions, train


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train an architecture and publish a new model version")
    train.add_argument("architecture", choices=sorted(ARCHITECTURES))
    train.add_argument("--epochs", type=int, help="override the recipe's epoch count")
    train.add_argument("--batch-size", type=int, help="override the recipe's batch size")
    train.add_argument(
        "--learning-rate", type=float, help="override the recipe's (peak) learning rate, e.g. lower to fine-tune"
    )
    train.add_argument("--data", type=Path, help=f"CIFAR-10 archive or folder (default: ${DATA_ENV_VAR})")
    train.add_argument("--models-dir", type=Path, default=Path("models"), help="model store (default: models)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--limit", type=int, help="train on the first N training images only (quick runs)")
    train.add_argument(
        "--distributed",
        action="store_true",
        help="require a cluster: run as the TF_CONFIG task (a run with TF_CONFIG set is distributed anyway)",
    )
    train.add_argument(
        "--calibration-holdout",
        type=int,
        help="training images kept out to fit the temperature on (default: the recipe's; 0: none)",
    )
    train.add_argument(
        "--jpeg-fraction",
        type=float,
        help="share of training images re-encoded as JPEG each epoch, 0 to 1 (default: the recipe's)",
    )
    train.add_argument(
        "--corruption-fraction",
        type=float,
        help="share of training images given noise, blur or lowered contrast each epoch, 0 to 1 (default: recipe's)",
    )
    train.add_argument(
        "--augmix-fraction",
        type=float,
        help="share of training images replaced by an AugMix-style mix each epoch, 0 to 1 (default: recipe's)",
    )
    train.add_argument(
        "--precision",
        choices=("float32", "mixed_bfloat16"),
        help="Keras dtype policy to train under (default: the recipe's); the published copy computes in float32",
    )
    train.add_argument(
        "--init-from", type=Path, help="fine-tune: start from this version's weights, e.g. models/whitened_convnet/5"
    )
    train.add_argument(
        "--extra-data", type=Path, help="also train on <dir>/<class>/*.png, e.g. from `feedback-dataset`"
    )
    calibrate = _version_command(
        commands,
        "calibrate",
        "fit a temperature for a trained version and publish the calibrated copy as a new version",
        "models/model_1/3",
    )
    calibrate.add_argument(
        "--fit-on-damaged",
        action="store_true",
        help="fit the temperature on the hold-out plus a damaged copy of it (see bench/shift_calibration.py)",
    )
    calibrate.add_argument(
        "--tta",
        choices=[mode.value for mode in TestTimeAugmentation],
        help="serve with this test-time augmentation instead (default: the source's); see bench/tta_views.py",
    )
    _version_command(
        commands,
        "quantize",
        "quantize a version's served procedure to int8 (OpenVINO, NNCF) and publish it with its measured accuracy",
        "models/whitened_convnet/5",
    )
    novelty = _version_command(
        commands,
        "novelty",
        "fit the novelty score (out-of-distribution) for a version and publish the copy that answers it",
        "models/whitened_convnet/9",
    )
    novelty.add_argument(
        "--quantile", type=float, default=0.95, help="share of hold-out images the stored threshold keeps (0.95)"
    )
    repeat = commands.add_parser(
        "repeat", help="train a recipe with several seeds, each recorded under models/<name>/runs/epochs-<E>/<seed>/"
    )
    repeat.add_argument("architecture", choices=sorted(ARCHITECTURES))
    repeat.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1; recorded ones are skipped")
    repeat.add_argument("--epochs", type=int, help="override the recipe's epoch count (a separate group)")
    repeat.add_argument("--models-dir", type=Path, default=Path("models"), help="model store (default: models)")
    repeat.add_argument("--data", type=Path, help=f"CIFAR-10 archive or folder (default: ${DATA_ENV_VAR})")
    repeat.add_argument(
        "--jobs", type=int, default=1, help="seeds trained at once, each in a process pinned to its share of the CPUs"
    )
    policy_cli.add_parser(commands)
    commands.add_parser("list", help="list the architectures and their recipes")
    export = commands.add_parser(
        "export",
        help="add what existing versions lack of the compiled copies: a TensorFlow SavedModel, OpenVINO IR",
    )
    export.add_argument("name", help="model name, e.g. whitened_convnet")
    export.add_argument("--version", type=int, help="one version (default: every version of the model)")
    export.add_argument("--models-dir", type=Path, default=Path("models"), help="model store (default: models)")
    export.add_argument(
        "--format", choices=["all", "saved_model", "ir"], default="all", help="which copies to add (default: all)"
    )
    feedback = commands.add_parser(
        "feedback-dataset",
        help="write the prediction log's labelled images (logged with LOG_IMAGES=true) as <out>/<class>/<id>.png",
    )
    feedback.add_argument("--db", required=True, help="the service's MONITORING_DB, a SQLAlchemy URL")
    feedback.add_argument("--out", type=Path, required=True, help="folder to write (replaced as a whole)")
    samples = commands.add_parser("export-samples", help="write CIFAR-10 test images as PNGs for the web page")
    samples.add_argument("--out", type=Path, default=Path("app/static/samples"))
    samples.add_argument("--per-class", type=int, default=4)
    samples.add_argument("--data", type=Path, help=f"CIFAR-10 archive or folder (default: ${DATA_ENV_VAR})")
    return parser


def _version_command(commands: Any, name: str, description: str, example: str) -> argparse.ArgumentParser:
    """A command that reads one version and publishes a new one beside it (calibrate, quantize, novelty)."""
    command: argparse.ArgumentParser = commands.add_parser(name, help=description)
    command.add_argument("source", type=Path, help=f"the version folder, e.g. {example}")
    command.add_argument("--models-dir", type=Path, default=Path("models"), help="where the new version goes")
    command.add_argument("--data", type=Path, help=f"CIFAR-10 archive or folder (default: ${DATA_ENV_VAR})")
    return command


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        for name, architecture in sorted(ARCHITECTURES.items()):
            print(f"{name:18} {architecture.description}")
        return 0
    if args.command == "export-samples":
        return _export_samples(args.out, args.per_class, args.data)
    if args.command == "calibrate":
        return _calibrate(args.source, args.models_dir, args.data, args.tta, args.fit_on_damaged)
    if args.command == "quantize":
        return _quantize(args.source, args.models_dir, args.data)
    if args.command == "novelty":
        return _novelty(args.source, args.models_dir, args.data, args.quantile)
    if args.command == "serve-policy":
        return _serve_policy(args)
    if args.command == "repeat":
        return _repeat(args)
    if args.command == "export":
        return _export(args.models_dir, args.name, args.version, args.format)
    if args.command == "feedback-dataset":
        return _feedback_dataset(args.db, args.out)
    for flag in ("epochs", "batch_size", "limit"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            print(f"error: --{flag.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    if args.learning_rate is not None and not args.learning_rate > 0:
        print("error: --learning-rate must be above 0", file=sys.stderr)
        return 2
    if args.calibration_holdout is not None and args.calibration_holdout < 0:
        print("error: --calibration-holdout must be 0 or more", file=sys.stderr)
        return 2
    for flag in ("jpeg_fraction", "corruption_fraction", "augmix_fraction"):
        value = getattr(args, flag)
        if value is not None and not 0 <= value <= 1:
            print(f"error: --{flag.replace('_', '-')} must be between 0 and 1", file=sys.stderr)
            return 2
    if args.init_from is not None and not (args.init_from / "model.keras").is_file():
        print(f"error: --init-from {args.init_from} is not a version folder with a model.keras", file=sys.stderr)
        return 2
    if args.distributed and not os.environ.get("TF_CONFIG"):
        print(
            "error: --distributed needs TF_CONFIG (the cluster's addresses and this task); see README", file=sys.stderr
        )
        return 2

    options = TrainOptions(
        architecture=args.architecture,
        models_dir=args.models_dir,
        data=args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        limit=args.limit,
        calibration_holdout=args.calibration_holdout,
        jpeg_fraction=args.jpeg_fraction,
        corruption_fraction=args.corruption_fraction,
        augmix_fraction=args.augmix_fraction,
        precision=args.precision,
        init_from=args.init_from,
        extra_data=args.extra_data,
    )
    try:
        published = train(options)
    except (DatasetError, WorkerFailed, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # A full disk: the backups and the store are left usable (training/checkpoints.py).
        print(f"error: {error}", file=sys.stderr)
        return 74  # EX_IOERR
    except KeyboardInterrupt:
        print("\ninterrupted: no version was published; run the same command again to resume", file=sys.stderr)
        return 130
    print(f"published {published}" if published else "done: this worker publishes nothing")
    return 0


def _feedback_dataset(db_url: str, out: Path) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from training.feedback import write_feedback_dataset

    try:
        written = write_feedback_dataset(db_url, out)
    except (SQLAlchemyError, OSError) as error:
        print(f"error: cannot read the prediction log at {db_url}: {error}", file=sys.stderr)
        return 1
    print(f"wrote {written} labelled images to {out} (train on them with --extra-data {out})")
    return 0


def _repeat(args: argparse.Namespace) -> int:
    from training.repeat import SeedsFailed, repeat
    from training.workers import cpu_shares

    if args.seeds < 1 or (args.epochs is not None and args.epochs < 1):
        print("error: --seeds and --epochs must be at least 1", file=sys.stderr)
        return 2
    try:
        cpu_shares(args.jobs)
    except ValueError as error:  # More jobs than CPUs: a usage error, like the two above.
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        repeat(args.architecture, args.seeds, args.epochs, args.models_dir, args.data, args.jobs)
    except (DatasetError, SeedsFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return 130
    return 0


def _export(models_dir: Path, name: str, version: int | None, which: str = "all") -> int:
    from training.core.artifacts import ArtifactNotFound, list_versions, version_dir
    from training.core.records import InvalidArtifact
    from training.export import FORMATS, export_version

    try:
        versions = [version] if version is not None else list_versions(models_dir, name)
        if not versions:
            raise ArtifactNotFound(f"model {name!r} has no versions in {models_dir}")
        for number in versions:
            folder = version_dir(models_dir, name, number)
            added = export_version(folder, FORMATS if which == "all" else (which,))
            print(f"{folder}: added {' and '.join(added)}" if added else f"{folder}: complete, nothing to add")
    except (ArtifactNotFound, InvalidArtifact) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _serve_policy(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from training.core.records import InvalidArtifact

    try:
        print(policy_cli.run(args))
    except (InvalidArtifact, ValidationError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _calibrate(source: Path, models_dir: Path, data: Path | None, tta: str | None, fit_on_damaged: bool) -> int:
    from training.calibrate import calibrate_version
    from training.core.records import InvalidArtifact

    try:
        chosen_tta = TestTimeAugmentation(tta) if tta else None
        published = calibrate_version(source, models_dir, data, chosen_tta, fit_on_damaged)
    except (DatasetError, InvalidArtifact, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"published {published}")
    return 0


def _quantize(source: Path, models_dir: Path, data: Path | None) -> int:
    from training.core.artifacts import load_artifact
    from training.core.records import InvalidArtifact
    from training.quantize import quantize_version

    try:
        published = quantize_version(source, models_dir, data)
    except (DatasetError, InvalidArtifact, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    quantization = load_artifact(published).metadata.quantization
    assert quantization is not None
    print(f"published {published}")
    for condition, accuracy in quantization.accuracy.items():
        reference = quantization.reference_accuracy[condition]
        change = 100 * (accuracy - reference)
        print(f"  {condition:16} int8 {accuracy:.2%}  tensorflow {reference:.2%}  ({change:+.2f} points)")
    return 0


def _novelty(source: Path, models_dir: Path, data: Path | None, quantile: float) -> int:
    from training.core.artifacts import load_artifact
    from training.core.records import InvalidArtifact
    from training.novelty import add_novelty

    try:
        published = add_novelty(source, models_dir, data, quantile)
    except (DatasetError, InvalidArtifact, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    novelty = load_artifact(published).metadata.novelty
    assert novelty is not None
    print(f"published {published}: threshold {novelty.threshold:.4f} keeps {novelty.quantile:.0%} of the hold-out")
    return 0


def _export_samples(out: Path, per_class: int, data: Path | None) -> int:
    """The first `per_class` test images of each class, as PNGs plus a samples.json manifest."""
    import json

    from training.core.preprocessing import encode_png
    from training.data import load_cifar10

    dataset = load_cifar10(data)
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for label, name in enumerate(dataset.class_names):
        for index in [int(i) for i in (dataset.y_test == label).nonzero()[0][:per_class]]:
            filename = f"test_{index:05d}_{name}.png"
            (out / filename).write_bytes(encode_png(dataset.x_test[index]))
            manifest.append({"file": filename, "test_index": index, "label": label, "class_name": name})
    (out / "samples.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(manifest)} samples to {out}")
    return 0
