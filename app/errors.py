"""Domain errors and the one place that turns them into HTTP answers.

The core and the registry raise plain exceptions that know nothing of HTTP;
`status_for` and the handlers below decide each one's status, once.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.decoding import ImageError, ImageTooLarge, UnsupportedImage
from training.core.artifacts import ArtifactNotFound


class ModelNotFound(LookupError):
    """No such model, version or file of a version."""


class ModelNotReady(RuntimeError):
    """The model exists but no usable version is loaded (still loading, or failed)."""


class InvalidRequest(ValueError):
    """Parameters that are each valid but contradict each other."""


# Most specific first: the first class an error is an instance of decides.
STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (ModelNotFound, 404),
    (ArtifactNotFound, 404),
    (ModelNotReady, 503),
    (InvalidRequest, 400),
    (UnsupportedImage, 415),
    (ImageTooLarge, 413),
    (ImageError, 400),
)


def status_for(error: Exception) -> int:
    """The HTTP status of a domain error (also used for per-file entries of a batch)."""
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    raise TypeError(f"{type(error).__name__} is not a domain error") from error


DOMAIN_ERRORS = tuple(error_type for error_type, _ in STATUS_BY_ERROR)


def protocol_error(error: Exception) -> JSONResponse:
    """The standard protocols' error body (`{"error": ...}`, Open Inference and TF Serving alike)."""
    return JSONResponse(status_code=status_for(error), content={"error": str(error)})


def register_error_handlers(app: FastAPI) -> None:
    async def answer(_: Request, error: Exception) -> JSONResponse:
        return JSONResponse(status_code=status_for(error), content={"detail": str(error)})

    for error_type, _ in STATUS_BY_ERROR:
        app.add_exception_handler(error_type, answer)
