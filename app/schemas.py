"""Response bodies, as the OpenAPI page at /docs shows them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from training.core.artifacts import Metrics, Summary
from training.core.policy import ServingPolicy


class ErrorResponse(BaseModel):
    detail: str = Field(description="What was wrong with the request, in plain words.")


class ClassProbability(BaseModel):
    index: int
    name: str
    probability: float


class Prediction(BaseModel):
    model: str
    version: int
    class_index: int
    class_name: str
    probability: float
    top_k: list[ClassProbability]
    probabilities: dict[str, float] = Field(description="All ten classes, in label order.")


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
