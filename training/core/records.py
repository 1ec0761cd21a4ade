"""The typed files of a stored version (metadata.json, summary.json, metrics.json and the records inside
them), their format number, and how they are read: validated, older formats migrated, unknown keys
dropped. `training/core/artifacts.py` owns where they live in the store; this module owns what they say.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from training.core.classes import NUM_CLASSES
from training.core.preprocessing import INPUT_SHAPE, Scaling, TestTimeAugmentation, TtaAverage

# 2: calibrated versions (temperature, TTA average, calibration and robustness reports, calibration.png).
# 3: an optional novelty score (`Metadata.novelty`, with novelty.npz): the served graph answers it too.
FORMAT_VERSION = 3
SUPPORTED_FORMAT_VERSIONS = (1, 2, 3)  # Older formats are migrated in `_migrate` before validation.


class InvalidArtifact(ValueError):
    """A version folder whose files are missing, unreadable or do not follow the format."""


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
