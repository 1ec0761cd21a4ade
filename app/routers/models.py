"""The served models: list, model cards (metadata, layer table, metrics, plots) and comparisons.

Everything here reads the registry's loaded versions, so a version that failed to
load has no card (503 with the reason), and a card always describes what answers.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from app.backends import Backend
from app.comparison import compare_models
from app.deps import LabelQuery, RegistryDep, VersionQuery
from app.errors import InvalidRequest, ModelNotFound
from app.registry import ModelRegistry, VersionState
from app.schemas import (
    ErrorResponse,
    LayerSummary,
    ModelInfo,
    ModelList,
    NoveltyStatus,
    VersionMetrics,
    VersionStatus,
)
from training.core import artifacts, records

router = APIRouter(prefix="/models", tags=["models"])
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Contradictory or empty parameters."},
    404: {"model": ErrorResponse, "description": "Unknown model, version or plot."},
    503: {"model": ErrorResponse, "description": "The version is still loading or failed to load."},
}


@router.get("", response_model=ModelList)
def list_models(registry: RegistryDep) -> ModelList:
    """Every model in the store with its versions, load status, size and accuracy."""
    default = registry.default_model()
    return ModelList(
        default_model=default, models=[_model_info(registry, name, default) for name in registry.model_names()]
    )


@router.get("/compare", responses=ERRORS)
def compare(
    registry: RegistryDep,
    names: Annotated[
        str,
        # At least one name: something other than commas and spaces (else 422, as the schema says).
        Query(description="Comma-separated model names, e.g. model_1,model_2.", pattern=r"[^,\s]"),
    ],
) -> dict[str, Any]:
    """Side-by-side numbers for several models (served versions) and a paragraph that reads them."""
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    if not wanted:  # Only separators and control characters that str.strip() counts as space.
        raise InvalidRequest("name at least one model, e.g. ?names=model_1,model_2")
    return compare_models(registry, wanted)


@router.get("/{name}", response_model=records.Metadata, responses=ERRORS)
def read_model(
    name: str, registry: RegistryDep, version: VersionQuery = None, label: LabelQuery = None
) -> records.Metadata:
    """metadata.json of a version: input shape, scaling, classes, accuracy, creation time."""
    return registry.artifact(name, version, label).metadata


@router.get("/{name}/summary", response_model=LayerSummary, responses=ERRORS)
def read_summary(
    name: str, registry: RegistryDep, version: VersionQuery = None, label: LabelQuery = None
) -> LayerSummary:
    """The layer table as `model.summary()` shows it, with parameter totals."""
    artifact = registry.artifact(name, version, label)
    return LayerSummary(version=artifact.version, **artifact.summary.model_dump())


@router.get("/{name}/metrics", response_model=VersionMetrics, responses=ERRORS)
def read_metrics(
    name: str, registry: RegistryDep, version: VersionQuery = None, label: LabelQuery = None
) -> VersionMetrics:
    """Stored training metrics: history per epoch, test results, confusion matrix, timings, hyperparameters."""
    artifact = registry.artifact(name, version, label)
    return VersionMetrics(model=artifact.name, version=artifact.version, **artifact.metrics.model_dump())


@router.get(
    "/{name}/plots/{plot}",
    response_class=FileResponse,
    responses=ERRORS | {200: {"content": {"image/png": {}}, "description": "A PNG plot."}},
)
def read_plot(
    name: str, plot: str, registry: RegistryDep, version: VersionQuery = None, label: LabelQuery = None
) -> FileResponse:
    """curves.png (loss and accuracy per epoch), confusion.png (test-set confusion matrix) or
    calibration.png (reliability diagram; versions of format 2 on)."""
    if plot not in artifacts.PLOT_FILES:
        raise ModelNotFound(f"no plot {plot!r}; plots: {', '.join(artifacts.PLOT_FILES)}")
    artifact = registry.artifact(name, version, label)
    path = artifact.folder / plot
    if not path.is_file():
        raise ModelNotFound(f"model {name!r} version {artifact.version} has no {plot}")
    return FileResponse(path, media_type="image/png")


def _model_info(registry: ModelRegistry, name: str, default: str | None) -> ModelInfo:
    states = registry.states(name)
    serving = registry.serving(name)
    served = registry.artifact(name).metadata if serving.default_version is not None else None
    labels = serving.policy.labels
    notes = [message for message in (serving.policy_error, serving.note) if message]
    return ModelInfo(
        name=name,
        description=served.description if served else None,
        is_default=name == default,
        served_version=serving.default_version,
        labels=labels,
        policy=serving.policy,
        policy_error="; ".join(notes) or None,
        params=served.params if served else None,
        test_accuracy=served.test_accuracy if served else None,
        versions=[
            VersionStatus(
                version=state.version,
                state=state.state,
                error=state.error,
                held_back=serving.held_back.get(state.version),
                labels=sorted(label for label, version in labels.items() if version == state.version),
                params=state.metadata.params if state.metadata else None,
                test_accuracy=state.metadata.test_accuracy if state.metadata else None,
                created_at=state.metadata.created_at if state.metadata else None,
                backend=state.backend,
                int8_accuracy=_int8_accuracy(state),
                backend_refused=state.refused,
                novelty=_novelty(state),
            )
            for state in sorted(states.values(), key=lambda s: s.version)
        ],
    )


def _novelty(state: VersionState) -> NoveltyStatus | None:
    if state.novelty is None:
        return None
    novelty = state.novelty
    return NoveltyStatus(
        available=novelty.threshold is not None,
        threshold=novelty.threshold,
        quantile=novelty.quantile,
        reason=novelty.reason,
    )


def _int8_accuracy(state: VersionState) -> dict[str, float] | None:
    quantization = state.metadata.quantization if state.metadata else None
    if state.backend is not Backend.OPENVINO_INT8 or quantization is None:
        return None
    if quantization.corruption is None:
        return quantization.accuracy
    return quantization.accuracy | {"corruption_mean": quantization.corruption.mean_accuracy}
