"""Dependencies the endpoints declare: the settings and the model registry of this app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.registry import ModelRegistry


# async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread hop
# per dependency per request, which costs more than the work itself.
async def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
