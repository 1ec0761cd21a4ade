"""The model store format: `models/<name>/<version>/`, written and read only through this module.

TensorFlow Serving's convention: a folder per model, integer version folders
inside, the highest version is the newest. A version is written into a hidden
staging folder beside the versions and renamed into place only once every file
is there, so a reader (the service polls this folder) never sees half a version.

Each version holds:
    model.keras     the trained Keras model, without optimizer state
    metadata.json   `Metadata`: what a server needs (input, scaling, classes, accuracy)
    summary.json    `Summary`: the layer table of `model.summary()` and parameter counts
    metrics.json    `Metrics`: per-epoch history, test results, timings, hyperparameters
    curves.png      loss and accuracy per epoch (training vs validation)
    confusion.png   the test-set confusion matrix
    calibration.png the reliability diagram before and after calibration (format 2 on)
    saved_model.pb  with variables/: the same served procedure as a TensorFlow SavedModel (optional)
    openvino/       model.xml + model.bin: the same served procedure as OpenVINO IR (fp32), compiled at
                    publish, and compiled.json (`CompiledIR`): TensorFlow's answers to the probe batch,
                    which the service holds the IR to at load, so it serves without TensorFlow
    openvino-int8/  model.xml + model.bin: the served procedure quantized to int8 (optional; only in
                    versions made by `python -m training quantize`, whose metadata says how it scores)
    novelty.npz     the novelty score's statistics (optional, format 3: `training/core/novelty.py`)

The three JSON files are typed pydantic models: writers build them, readers get
fields, and `load_artifact` refuses a version whose files are missing or invalid.

Beside the versions, a model folder may hold `serving.json` (which versions serve:
`training/core/policy.py`) and `runs/` (repeated runs of a recipe: `training/core/runs.py`);
both use this module's records and readers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from training.core.classes import NUM_CLASSES
from training.core.novelty import STATISTICS_FILE, NoveltyStatistics, load_statistics
from training.core.preprocessing import INPUT_SHAPE, Scaling, TestTimeAugmentation, TtaAverage
from training.core.staging import STAGING_PREFIX, publish, staging_name

# 2: calibrated versions (temperature, TTA average, calibration and robustness reports, calibration.png).
# 3: an optional novelty score (`Metadata.novelty`, with novelty.npz): the served graph answers it too.
FORMAT_VERSION = 3
SUPPORTED_FORMAT_VERSIONS = (1, 2, 3)  # Older formats are migrated in `_migrate` before validation.
MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.json"
CURVES_FILE = "curves.png"
CONFUSION_FILE = "confusion.png"
CALIBRATION_FILE = "calibration.png"
PLOT_FILES = (CURVES_FILE, CONFUSION_FILE, CALIBRATION_FILE)
ARTIFACT_FILES = (MODEL_FILE, METADATA_FILE, SUMMARY_FILE, METRICS_FILE, *PLOT_FILES)
FORMAT_1_FILES = tuple(name for name in ARTIFACT_FILES if name != CALIBRATION_FILE)
SAVED_MODEL_FILE = "saved_model.pb"  # With variables/: the portable SavedModel (training/export.py), optional.
INT8_DIR = "openvino-int8"  # The int8 OpenVINO model (training/quantize.py), optional.
INT8_MODEL_FILE = "model.xml"  # With model.bin beside it.
IR_DIR = "openvino"  # The fp32 OpenVINO IR of the served procedure (training/export.py), with its record.
IR_MODEL_FILE = "model.xml"  # With model.bin beside it.
IR_RECORD_FILE = "compiled.json"  # `CompiledIR`; written last, so its presence marks a complete IR.
CHECKPOINTS_DIR = ".checkpoints"

# Names become folder names: no separators, no dots in front, nothing a URL could smuggle.
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class ArtifactNotFound(LookupError):
    """No such model or version in the store."""


class InvalidArtifact(ValueError):
    """A version folder whose files are missing, unreadable or do not follow the format."""


# ---- the typed files ------------------------------------------------------------------


class Record(BaseModel):
    # Unknown keys are dropped on read, so a newer writer's extra fields never break this reader.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Metadata(Record):
    """metadata.json: everything a server needs to run the version."""

    format_version: int = FORMAT_VERSION
    name: str
    version: int | None = Field(None, description="Set when the version is published.")
    architecture: str
    description: str
    created_at: str
    input_shape: list[int] = Field(default_factory=lambda: list(INPUT_SHAPE))
    input_dtype: str = "uint8"
    scaling: Scaling
    test_time_augmentation: TestTimeAugmentation = TestTimeAugmentation.NONE
    tta_average: TtaAverage = TtaAverage.PROBABILITIES
    temperature: float = Field(1.0, gt=0, description="Logits are divided by this before the softmax.")
    class_names: list[str]
    params: int
    test_accuracy: float
    keras_version: str
    tensorflow_version: str
    quantization: Quantization | None = Field(None, description="Set when the version carries an int8 model.")
    novelty: Novelty | None = Field(None, description="Set when the version answers a novelty score (format 3).")

    @field_validator("input_shape")
    @classmethod
    def _cifar_input(cls, shape: list[int]) -> list[int]:
        if tuple(shape) != INPUT_SHAPE:
            raise ValueError(f"input shape {shape} is not {list(INPUT_SHAPE)}")
        return shape

    @field_validator("class_names")
    @classmethod
    def _ten_classes(cls, names: list[str]) -> list[str]:
        if len(names) != NUM_CLASSES:
            raise ValueError(f"{len(names)} class names; CIFAR-10 has {NUM_CLASSES}")
        return names


class LayerRow(Record):
    name: str
    type: str
    output_shape: list[int | None]
    params: int


class Summary(Record):
    """summary.json: the layer table `model.summary()` prints, as data, plus the text itself."""

    model: str
    layers: list[LayerRow]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    text: str


class Reference(Record):
    """A published result to compare against (the tutorial's, for its two networks)."""

    test_accuracy: float
    epochs: int
    seconds_per_epoch: float
    hardware: str
    source: str


class DatasetFingerprint(Record):
    source: str = Field(description="The dataset's file or folder name: never a path of the training machine.")
    x_train_sha256: str
    x_test_sha256: str
    labels_sha256: str
    extra_images: int = Field(0, description="Images added by `train --extra-data` (labelled feedback).")
    extra_sha256: str | None = Field(None, description="Of the extra images and their labels.")

    @field_validator("source")
    @classmethod
    def _name_only(cls, source: str) -> str:
        # Versions recorded before this kept the extraction cache's absolute path (a home directory):
        # reading them keeps only its last part, so no served record names the training machine's folders.
        return PurePosixPath(source).name if "/" in source else source


class ProbabilityScores(Record):
    """How honest the probabilities are, on the 10,000 test images."""

    ece: float = Field(description="Expected calibration error, 15 equal-width confidence bins.")
    nll: float = Field(description="Mean negative log-likelihood of the true class.")
    brier: float = Field(description="Mean squared error of the probability vector against the one-hot label.")
    mean_confidence: float
    accuracy: float


class CalibrationSplit(Record):
    """The training images the temperature was fitted on: re-derive them with training.data.calibration_split."""

    source: str = "train"
    size: int
    seed: int
    train_images: int = Field(description="Size of the training set the split was drawn from.")
    indices_sha256: str


class CalibrationReport(Record):
    temperature: float
    tta_average: TtaAverage
    split: CalibrationSplit
    before: ProbabilityScores = Field(description="The uncalibrated forward pass (T = 1, probabilities averaged).")
    after: ProbabilityScores = Field(description="The served, calibrated forward pass.")
    alternatives: dict[str, ProbabilityScores] = Field(
        default_factory=dict, description="Each TTA average with its own fitted temperature, for comparison."
    )
    fitted_on_damaged: bool = Field(
        False, description="Fitted on the hold-out plus a damaged copy of it (noise, blur, contrast), not alone."
    )


class CorruptionReport(Record):
    """Served accuracy on the common-corruption benchmark (`training.corruptions`, CIFAR-10-C's kinds)."""

    images: int = Field(description="Test images per corruption and severity (a fixed, class-balanced subset).")
    seed: int = Field(description="Seed of the subset and of the corruptions' random draws.")
    mean_accuracy: float = Field(description="Mean over every corruption and severity.")
    by_severity: dict[str, float] = Field(description="Mean over the corruptions at each severity, '1' to '5'.")
    by_corruption: dict[str, list[float]] = Field(description="Accuracy at severities 1 to 5, per corruption.")
    ece: float = Field(description="Expected calibration error (15 bins) over every corrupted image.")
    seen_in_training: list[str] = Field(
        default_factory=list, description="Corruptions the training also used as augmentation (not comparable)."
    )
    unseen_mean_accuracy: float = Field(description="Mean over the corruptions training never used.")


class Novelty(Record):
    """How the version scores novelty (`training/core/novelty.py`), from training images only.

    The statistics come from `fitted_on`, the threshold from the served score of `holdout`
    (training images the network never trained on); both re-derivable from their seeds.
    """

    method: str = Field(description="What the score combines.")
    layers: list[str] = Field(description="The layers whose channel statistics are compared.")
    statistics_sha256: str = Field(description="Of novelty.npz, which the served graph was built from.")
    fitted_on: CalibrationSplit = Field(description="The training images the statistics were fitted on.")
    fitted_on_damaged_share: float = Field(
        0.0, description="Share of them damaged as the version's training damaged its images (training.augment)."
    )
    holdout: CalibrationSplit = Field(description="The held-out training images the threshold was fitted on.")
    holdout_scores: list[float] = Field(description="The served score of each hold-out image (TensorFlow).")
    quantile: float = Field(description="Share of hold-out images the stored threshold keeps as in distribution.")
    threshold: float = Field(description="Scores above this answer in_distribution = false.")


class Quantization(Record):
    """An int8 copy of the served procedure (in `INT8_DIR`), measured against the version's own.

    The service serves it only when these measurements say it keeps the accuracy and
    the calibration (app/backends.py) and the file still gives the recorded answers to
    the probe batch.
    """

    runtime: str = Field(description="The runtime and version that quantized it, e.g. 'openvino 2026.4.1'.")
    tool: str = Field(description="The quantizer, e.g. 'nncf 3.4.0' (post-training, per-channel weights).")
    source_version: int = Field(description="The version whose weights and forward pass were quantized.")
    calibration: CalibrationSplit = Field(description="The held-out training images the quantizer observed.")
    accuracy: dict[str, float] = Field(description="int8 accuracy per condition (lossless, jpeg_q75, ...).")
    reference_accuracy: dict[str, float] = Field(description="The same conditions through TensorFlow (fp32).")
    probability_scores: ProbabilityScores = Field(description="ECE, NLL, Brier of the int8 probabilities.")
    reference_probability_scores: ProbabilityScores = Field(description="The same through TensorFlow.")
    agreement: float = Field(description="Share of the test images where int8 and fp32 pick the same class.")
    corruption: CorruptionReport | None = Field(None, description="The int8 model on the corruption benchmark.")
    probe_probabilities: list[list[float]] = Field(
        description="int8 answers to training.core.preprocessing.probe_images(), checked at load time "
        "(with the novelty score as an eleventh value when the version has one)."
    )
    novelty_holdout_scores: list[float] | None = Field(
        None, description="The int8 graph's novelty score of each hold-out image: its own threshold's basis."
    )


class CompiledIR(Record):
    """openvino/compiled.json: the IR of a version's served procedure, checked against TensorFlow at publish.

    The service never needs TensorFlow to trust it: at load the IR must give these recorded answers
    to the probe batch again (`app/backends.py`), which catches a damaged or foreign file.
    """

    runtime: str = Field(description="The runtime and version that converted it, e.g. 'openvino 2026.4.1'.")
    max_difference: float = Field(description="Largest probability difference from TensorFlow on the probe batch.")
    tolerance: float = Field(description="The parity tolerance it was held to at publish.")
    probe_probabilities: list[list[float]] = Field(
        description="TensorFlow's answers to training.core.preprocessing.probe_images()."
    )
    milliseconds: dict[str, dict[str, float]] = Field(
        description="Median latency at publish, per batch size: {'1': {'openvino': ms, 'tensorflow': ms}, ...}."
    )


class Metrics(Record):
    """metrics.json: how the version was trained and how it scores on the test set."""

    architecture: str
    history: list[dict[str, int | float]] = Field(description="One row per epoch: loss, accuracy, val_*, seconds.")
    test_accuracy: float
    test_loss: float
    test_images: int
    per_class_accuracy: dict[str, float]
    confusion_matrix: list[list[int]]
    test_time_augmentation: TestTimeAugmentation = TestTimeAugmentation.NONE
    test_accuracy_without_tta: float | None = None
    test_loss_without_tta: float | None = None
    evaluate_seconds: float
    epochs: int
    training_seconds: float
    wall_seconds: float
    seconds_per_epoch: float
    images_per_second: float
    hyperparameters: dict[str, Any] = Field(description="The recipe, with seed, limit and training-set size.")
    dataset: DatasetFingerprint
    environment: dict[str, str] = Field(description="Library versions, machine and git commit of the run.")
    reference: Reference | None = None
    robustness: dict[str, float] | None = Field(
        None, description="Served accuracy on re-encoded test images: lossless, jpeg_q95, jpeg_q75, jpeg_q50, ..."
    )
    calibration: CalibrationReport | None = None
    probability_scores: ProbabilityScores | None = Field(None, description="Of the served probabilities, test set.")
    corruption: CorruptionReport | None = Field(None, description="Served accuracy on corrupted test images.")


RecordT = TypeVar("RecordT", bound=Record)


@dataclass(frozen=True)
class Artifact:
    """One stored version, read and validated: everything but the Keras model itself."""

    folder: Path
    metadata: Metadata
    summary: Summary
    metrics: Metrics

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def version(self) -> int:
        return int(self.folder.name)


# ---- reading --------------------------------------------------------------------------


def is_valid_name(name: str) -> bool:
    return bool(_NAME_PATTERN.fullmatch(name))


def list_models(models_dir: Path) -> list[str]:
    """Names of models with at least one version folder."""
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir() if is_valid_name(p.name) and list_versions(models_dir, p.name))


def list_versions(models_dir: Path, name: str) -> list[int]:
    """Versions of `name`, oldest first (staging folders are not versions)."""
    folder = models_dir / name
    if not is_valid_name(name) or not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and p.is_dir())


def scan(models_dir: Path) -> tuple[dict[str, list[int]], dict[str, str]]:
    """(versions per readable model, why per unreadable model): one unreadable folder never hides the rest."""
    versions: dict[str, list[int]] = {}
    problems: dict[str, str] = {}
    if not models_dir.is_dir():
        return versions, problems
    for folder in sorted(models_dir.iterdir()):
        if not is_valid_name(folder.name):
            continue
        try:
            found = list_versions(models_dir, folder.name)
        except OSError as error:
            problems[folder.name] = f"cannot read {folder.name}/: {error.strerror or error}"
            continue
        if found:
            versions[folder.name] = found
    return versions, problems


def signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of a version's files: changes when its files do."""
    try:
        return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()))
    except OSError:
        return ()


def content_digest(folder: Path) -> str:
    """A hash of what defines a version's predictions (weights and metadata): keys caches derived from it.

    Unlike `signature`, it survives a copy or a fresh clone, which change modification times.
    """
    digest = hashlib.sha256()
    for filename in (MODEL_FILE, METADATA_FILE):
        digest.update((folder / filename).read_bytes())
    return digest.hexdigest()


def version_dir(models_dir: Path, name: str, version: int | None = None) -> Path:
    """The folder of `name` at `version` (newest when None); raises ArtifactNotFound."""
    versions = list_versions(models_dir, name)
    if not versions:
        raise ArtifactNotFound(f"model {name!r} not found")
    if version is None:
        version = versions[-1]
    if version not in versions:
        raise ArtifactNotFound(f"model {name!r} has no version {version} (versions: {versions})")
    return models_dir / name / str(version)


def load_artifact(folder: Path) -> Artifact:
    """Read and validate a version's files; raises InvalidArtifact naming what is wrong."""
    metadata = read_record(folder, METADATA_FILE, Metadata)
    required = FORMAT_1_FILES if metadata.format_version == 1 else ARTIFACT_FILES
    missing = [name for name in required if not (folder / name).is_file()]
    if missing:
        raise InvalidArtifact(f"missing {', '.join(missing)}")
    return Artifact(
        folder=folder,
        metadata=metadata,
        summary=read_record(folder, SUMMARY_FILE, Summary),
        metrics=read_record(folder, METRICS_FILE, Metrics),
    )


def load_ir_record(folder: Path) -> CompiledIR | None:
    """The version's IR record, or None when it has no complete IR (older versions)."""
    if not (folder / IR_DIR / IR_RECORD_FILE).is_file():
        return None
    return read_record(folder / IR_DIR, IR_RECORD_FILE, CompiledIR)


def load_novelty_statistics(folder: Path, metadata: Metadata) -> NoveltyStatistics | None:
    """The version's novelty statistics, checked against its record; None for a version without a score."""
    if metadata.novelty is None:
        return None
    path = folder / STATISTICS_FILE
    try:
        payload = path.read_bytes()
    except OSError as error:
        raise InvalidArtifact(f"{STATISTICS_FILE} is unreadable: {error}") from error
    if hashlib.sha256(payload).hexdigest() != metadata.novelty.statistics_sha256:
        raise InvalidArtifact(f"{STATISTICS_FILE} does not match the checksum in {METADATA_FILE}")
    return load_statistics(path)


def load_keras_model(folder: Path) -> Any:
    """The version's Keras model, uncompiled (serving needs no optimizer)."""
    import keras  # Lazily: reading the JSON files must not pay for TensorFlow.

    path = folder / MODEL_FILE
    # Keras reports a truncated archive as "File not found"; say what is actually wrong.
    if path.is_file() and not zipfile.is_zipfile(path):
        where = f"{folder.parent.name}/{folder.name}/{MODEL_FILE}"
        raise InvalidArtifact(f"{where} is not a complete .keras archive (truncated or corrupt)")
    return keras.saving.load_model(path, compile=False)


def read_record(folder: Path, filename: str, schema: type[RecordT]) -> RecordT:
    try:
        raw = json.loads((folder / filename).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidArtifact(f"{filename} is unreadable: {error}") from error
    if not isinstance(raw, dict):
        raise InvalidArtifact(f"{filename} is not a JSON object")
    if schema is Metadata:
        raw = _migrate(raw)
    try:
        return schema.model_validate(raw)
    except ValidationError as error:
        raise InvalidArtifact(f"{filename} is invalid: {error}") from error


def _migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """Check the format; refuse formats this code does not know.

    Formats 1 and 2 need no rewriting: format 1's versions are uncalibrated, which the
    defaults of the fields format 2 added (temperature 1, probabilities averaged) say
    exactly, and neither has a novelty score, which format 3's `novelty = None` says. The
    number is kept, so readers know such a version has no calibration.png.
    """
    found = raw.get("format_version")
    if found not in SUPPORTED_FORMAT_VERSIONS:
        raise InvalidArtifact(f"unsupported artifact format {found!r} (this code reads {SUPPORTED_FORMAT_VERSIONS})")
    return raw


# ---- writing --------------------------------------------------------------------------


class SavableModel(Protocol):
    def save(self, filepath: str | Path) -> None: ...


def checkpoint_dir(models_dir: Path, name: str) -> Path:
    """Where an unfinished run keeps its per-epoch backups so it can resume."""
    return models_dir / name / CHECKPOINTS_DIR


def save_version(
    models_dir: Path,
    model: SavableModel,
    metadata: Metadata,
    summary: Summary,
    metrics: Metrics,
    plots: Mapping[str, bytes],
    extras: Callable[[Path], None] | None = None,
) -> Path:
    """Write every file into a staging folder, then rename it to the next free version; returns it.

    On any exception (Ctrl-C included) the staging folder is deleted, so nothing
    partial is ever visible. The version number is chosen at rename time, so two
    concurrent runs get distinct versions.
    """
    if not is_valid_name(metadata.name):
        raise ValueError(f"invalid model name {metadata.name!r}")
    if set(plots) != set(PLOT_FILES):
        raise ValueError(f"plots must be exactly {PLOT_FILES}, got {sorted(plots)}")
    folder = models_dir / metadata.name
    folder.mkdir(parents=True, exist_ok=True)
    staging = staging_name(folder / "new-version")
    staging.mkdir()
    try:
        model.save(staging / MODEL_FILE)
        write_record(staging, SUMMARY_FILE, summary)
        write_record(staging, METRICS_FILE, metrics)
        for filename, png in plots.items():
            (staging / filename).write_bytes(png)
        if extras is not None:  # More files for the version (the SavedModel export), before it is visible.
            extras(staging)
        return _claim_version(staging, folder, metadata)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_stale_staging(models_dir: Path, name: str) -> list[Path]:
    """Delete staging folders left by killed processes (their pid, in the name, is gone); returns them."""
    folder = models_dir / name
    if not folder.is_dir():
        return []
    stale = []
    for path in folder.glob(f"{STAGING_PREFIX}*"):
        pid = path.name.removeprefix(STAGING_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            stale.append(path)
    return stale


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Alive, someone else's.
        return True
    return True


def write_record(folder: Path, filename: str, record: BaseModel) -> None:
    (folder / filename).write_text(record.model_dump_json(indent=2) + "\n", encoding="utf-8")


def _claim_version(staging: Path, folder: Path, metadata: Metadata) -> Path:
    """Rename the staging folder to the next free version number.

    rename(2) onto a missing or empty folder is atomic; onto a non-empty one it
    fails, which means another run took that number first, so try the next.
    """
    for _ in range(100):
        versions = [int(p.name) for p in folder.iterdir() if p.name.isdigit()]
        target = folder / str(max(versions, default=0) + 1)
        write_record(staging, METADATA_FILE, metadata.model_copy(update={"version": int(target.name)}))
        try:
            publish(staging, target)
        except OSError:
            continue
        return target
    raise RuntimeError(f"could not claim a version number in {folder}")
