"""Liveness and readiness, for orchestrators and load balancers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.deps import DataPlaneDep, RegistryDep
from app.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def read_health() -> Health:
    """The process is up and answering (liveness)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def read_readiness(registry: RegistryDep, dataplane: DataPlaneDep) -> Readiness | JSONResponse:
    """200 once the initial models are loaded and warmed up, 503 before (the rule of every protocol)."""
    models = {name: registry.loaded_versions(name) for name in registry.model_names()}
    if dataplane.server_ready():
        return Readiness(status="ready", models=models)
    body = Readiness(status="loading" if not registry.ready.is_set() else "no model available", models=models)
    return JSONResponse(status_code=503, content=body.model_dump())
