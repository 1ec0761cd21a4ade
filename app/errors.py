"""Domain errors and the handlers that turn them, and only them, into HTTP answers."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from training.artifacts import ArtifactNotFound
from training.preprocessing import ImageError


class ModelNotFound(LookupError):
    """No such model or version: 404."""


class ModelNotReady(RuntimeError):
    """The model exists but no usable version is loaded (still loading, or failed): 503."""


def _json(status: int, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail})


def register_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ModelNotFound)
    @app.exception_handler(ArtifactNotFound)
    async def not_found(_: Request, error: Exception) -> JSONResponse:
        return _json(404, str(error).strip("'\""))

    @app.exception_handler(ModelNotReady)
    async def not_ready(_: Request, error: ModelNotReady) -> JSONResponse:
        return _json(503, str(error))

    @app.exception_handler(ImageError)
    async def bad_image(_: Request, error: ImageError) -> JSONResponse:
        return _json(error.status, str(error))
