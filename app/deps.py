"""Dependencies the endpoints declare: the settings and the model registry of this app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from app.config import Settings
from app.dataplane import DataPlane
from app.registry import ModelRegistry
from app.uploads import Decoder


# async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread hop
# per dependency per request, which costs more than the work itself.
async def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_decoder(request: Request) -> Decoder:
    decoder: Decoder = request.app.state.decoder
    return decoder


async def get_dataplane(request: Request) -> DataPlane:
    dataplane: DataPlane = request.app.state.dataplane
    return dataplane


RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
DataPlaneDep = Annotated[DataPlane, Depends(get_dataplane)]
DecoderDep = Annotated[Decoder, Depends(get_decoder)]
VersionQuery = Annotated[
    int | None, Query(ge=1, description="Model version; default: the model's default (policy pin or promotion gate).")
]
LabelQuery = Annotated[
    str | None,
    Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", description="A version label from serving.json, e.g. stable."),
]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
