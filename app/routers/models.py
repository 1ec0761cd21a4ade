"""The model store: lists, model cards (metadata, layer table, metrics, plots) and comparisons."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from app.comparison import compare_models
from app.deps import RegistryDep, SettingsDep
from app.registry import ModelRegistry
from app.schemas import ErrorResponse, LayerSummary, ModelInfo, ModelList, VersionStatus
from training import artifacts

router = APIRouter(prefix="/models", tags=["models"])
NOT_FOUND = {404: {"model": ErrorResponse, "description": "Unknown model, version or plot."}}
VersionQuery = Annotated[int | None, Query(ge=1, description="Model version; default: the newest.")]


@router.get("", response_model=ModelList)
def list_models(registry: RegistryDep) -> ModelList:
    """Every model in the store with its versions, load status, size and accuracy."""
    default = registry.default_model()
    return ModelList(
        default_model=default, models=[_model_info(registry, name, default) for name in registry.model_names()]
    )


@router.get("/compare", responses=NOT_FOUND)
def compare(
    settings: SettingsDep,
    names: Annotated[str, Query(description="Comma-separated model names, e.g. model_1,model_2.")],
) -> dict[str, Any]:
    """Side-by-side numbers for several models (newest versions) and a paragraph that reads them."""
    return compare_models(settings.models_dir, [name.strip() for name in names.split(",") if name.strip()])


@router.get("/{name}", responses=NOT_FOUND)
def read_model(name: str, settings: SettingsDep, version: VersionQuery = None) -> dict[str, Any]:
    """metadata.json of a version: input shape, scaling, classes, accuracy, creation time."""
    return artifacts.read_json(artifacts.version_dir(settings.models_dir, name, version), artifacts.METADATA_FILE)


@router.get("/{name}/summary", response_model=LayerSummary, responses=NOT_FOUND)
def read_summary(name: str, settings: SettingsDep, version: VersionQuery = None) -> LayerSummary:
    """The layer table as `model.summary()` shows it, with parameter totals."""
    folder = artifacts.version_dir(settings.models_dir, name, version)
    return LayerSummary(version=int(folder.name), **artifacts.read_json(folder, artifacts.SUMMARY_FILE))


@router.get("/{name}/metrics", responses=NOT_FOUND)
def read_metrics(name: str, settings: SettingsDep, version: VersionQuery = None) -> dict[str, Any]:
    """Stored training metrics: history per epoch, test results, confusion matrix, timings, hyperparameters."""
    folder = artifacts.version_dir(settings.models_dir, name, version)
    return {"model": name, "version": int(folder.name)} | artifacts.read_json(folder, artifacts.METRICS_FILE)


@router.get(
    "/{name}/plots/{plot}",
    response_class=FileResponse,
    responses=NOT_FOUND | {200: {"content": {"image/png": {}}, "description": "A PNG plot."}},
)
def read_plot(name: str, plot: str, settings: SettingsDep, version: VersionQuery = None) -> FileResponse:
    """curves.png (loss and accuracy per epoch) or confusion.png (test-set confusion matrix)."""
    if plot not in artifacts.PLOT_FILES:
        raise artifacts.ArtifactNotFound(f"no plot {plot!r}; plots: {', '.join(artifacts.PLOT_FILES)}")
    folder = artifacts.version_dir(settings.models_dir, name, version)
    return FileResponse(folder / plot, media_type="image/png")


def _model_info(registry: ModelRegistry, name: str, default: str | None) -> ModelInfo:
    states = registry.states(name)
    available = registry.available_versions(name)
    served = states[available[-1]] if available else None
    meta = served.metadata if served else {}
    return ModelInfo(
        name=name,
        description=meta.get("description"),
        is_default=name == default,
        served_version=served.version if served else None,
        params=meta.get("params"),
        test_accuracy=meta.get("test_accuracy"),
        versions=[
            VersionStatus(
                version=state.version,
                state=state.state,
                error=state.error,
                params=state.metadata.get("params"),
                test_accuracy=state.metadata.get("test_accuracy"),
                created_at=state.metadata.get("created_at"),
            )
            for state in sorted(states.values(), key=lambda s: s.version)
        ],
    )
