"""Response bodies, as the OpenAPI page at /docs shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from training.core.classes import CLASS_NAMES
from training.core.policy import ServingPolicy
from training.core.records import Metrics, Summary


class ErrorResponse(BaseModel):
    detail: str = Field(description="What was wrong with the request, in plain words.")


class ClassProbability(BaseModel):
    index: int
    name: str
    probability: float


class Prediction(BaseModel):
    prediction_id: str = Field(description="This answer's id in the prediction log: send it to POST /feedback.")
    model: str
    version: int
    class_index: int
    class_name: str
    probability: float
    top_k: list[ClassProbability]
    probabilities: dict[str, float] = Field(description="All ten classes, in label order.")
    ood_score: float | None = Field(
        description=(
            "Novelty score: higher means less like the training images (null when the version has no score). "
            "The probabilities keep their meaning; this says whether to trust that the image is one of the ten."
        )
    )
    in_distribution: bool | None = Field(
        description=(
            "False when the image looks like none of the ten classes: ood_score above the version's threshold, "
            "which keeps OOD_THRESHOLD_QUANTILE of held-out training images (null without a score)."
        )
    )


class BatchItem(BaseModel):
    filename: str | None
    prediction: Prediction | None = None
    error: str | None = None
    status: int = Field(200, description="The HTTP status this file alone would have received.")


class BatchPrediction(BaseModel):
    model: str
    version: int
    results: list[BatchItem]


class VersionStatus(BaseModel):
    version: int
    state: str = Field(description="loading, available, failed, or unloaded (not in the serving policy)")
    error: str | None = None
    held_back: str | None = Field(None, description="Why the promotion gate did not make this version the default.")
    labels: list[str] = Field(default_factory=list, description="Labels of serving.json naming this version.")
    params: int | None = None
    test_accuracy: float | None = None
    created_at: str | None = None
    backend: str | None = Field(
        None, description="The runtime answering for this version: tensorflow, openvino or openvino-int8."
    )
    int8_accuracy: dict[str, float] | None = Field(
        None,
        description="When openvino-int8 answers: its own measured test accuracy per condition, and its mean on "
        "the corruption benchmark as corruption_mean (test_accuracy stays TensorFlow's, the reference it was held to).",
    )
    backend_refused: dict[str, str] = Field(
        default_factory=dict, description="Faster backends that do not serve this version, and why."
    )
    novelty: NoveltyStatus | None = Field(None, description="Its novelty score, once the version is loaded.")


class NoveltyStatus(BaseModel):
    available: bool = Field(description="Whether answers carry ood_score and in_distribution (else they are null).")
    threshold: float | None = Field(None, description="Scores above it answer in_distribution = false.")
    quantile: float | None = Field(None, description="Share of held-out training images the threshold keeps.")
    reason: str | None = Field(None, description="Why the version has no score.")


class ModelInfo(BaseModel):
    name: str
    description: str | None
    is_default: bool
    served_version: int | None = Field(
        description="The default version: the policy's pin, else the newest version the promotion gate let through."
    )
    labels: dict[str, int] = Field(default_factory=dict, description="Label -> version, from serving.json.")
    policy: ServingPolicy = Field(description="The serving policy in force (serving.json, or the default).")
    policy_error: str | None = Field(None, description="Why serving.json was ignored, or a pin could not be honoured.")
    params: int | None
    test_accuracy: float | None
    versions: list[VersionStatus]


class ModelList(BaseModel):
    default_model: str | None
    models: list[ModelInfo]


class LayerSummary(Summary):
    """summary.json of a version, with the version it belongs to."""

    version: int


class VersionMetrics(Metrics):
    """metrics.json of a version, with the model and version it belongs to."""

    model: str
    version: int


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    models: dict[str, list[int]] = Field(description="Available versions per model.")


ClassName = Literal[CLASS_NAMES]  # type: ignore[valid-type]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prediction_id: str = Field(min_length=1, max_length=64, description="From the answer being corrected.")
    label: ClassName = Field(description="What the image really shows: one of the ten class names.")


class FeedbackAnswer(BaseModel):
    prediction_id: str
    label: str
    predicted: str = Field(description="The class the service answered.")
    correct: bool


class Drift(BaseModel):
    population_stability_index: float = Field(description="Predicted classes against the test set's (0: identical).")
    chi_square: float
    p_value: float = Field(description="Pearson's chi-square test of the predicted classes against the test set's.")
    mean_top_probability_shift: float | None = Field(description="Live mean top probability minus the test set's.")
    psi_threshold: float
    drifted: bool | None = Field(description="PSI above the threshold; null with too few predictions to tell.")


class TimelinePoint(BaseModel):
    start: datetime
    predictions: int
    labelled: int
    live_accuracy: float | None
    unknown_rate: float | None = Field(None, description="Share answered as out of distribution (null unscored).")


class VersionMonitoring(BaseModel):
    model: str
    version: int
    predictions: int
    class_distribution: dict[str, float] = Field(description="Share of the logged predictions per class.")
    test_class_distribution: dict[str, float] | None = Field(description="The same on the test set (its record).")
    mean_top_probability: float
    test_mean_top_probability: float | None
    unknown_rate: float | None = Field(description="Share answered as out of distribution (null until scored).")
    drift: Drift | None
    labelled: int = Field(description="Logged predictions with feedback.")
    live_accuracy: float | None = Field(description="Accuracy on the labelled predictions.")
    live_accuracy_interval: tuple[float, float] | None = Field(description="Wilson's 95% interval.")
    timeline: list[TimelinePoint] = Field(description="The window in equal buckets (empty ones left out).")


class MonitoringReport(BaseModel):
    since: datetime
    versions: list[VersionMonitoring]
