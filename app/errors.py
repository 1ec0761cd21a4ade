"""Domain errors and the one place that turns them into HTTP answers.

The core and the registry raise plain exceptions that know nothing of HTTP;
`status_for` and the handlers below decide each one's status, once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from app.decoding import ImageError, ImageTooLarge, UnsupportedImage
from app.security import RESPONSE_HEADERS
from training.core.artifacts import ArtifactNotFound


class ModelNotFound(LookupError):
    """No such model, version or file of a version."""


class ModelNotReady(RuntimeError):
    """The model exists but no usable version is loaded (still loading, or failed)."""


class InvalidRequest(ValueError):
    """Parameters that are each valid but contradict each other."""


class ClientDisconnected(ConnectionError):
    """The client went away before its answer was ready; nobody will read the response."""


class JsonTooLarge(ValueError):
    """A JSON body of more than MAX_JSON_VALUES values: parsing it would hold the event loop too long."""


# Most specific first: the first class an error is an instance of decides.
STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (ModelNotFound, 404),
    (ArtifactNotFound, 404),
    (ModelNotReady, 503),
    (ClientDisconnected, 499),  # nginx's "client closed request": logged, never read.
    (JsonTooLarge, 413),
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


async def protocol_answer(work: Callable[[], Awaitable[Response]]) -> Response:
    """Run a standard protocol's endpoint (Open Inference, TF Serving): its domain errors, and the body-size
    limit raised while the body streams in, become the protocols' `{"error": ...}` body with their status."""
    try:
        return await work()
    except JsonTooLarge as error:
        # Refused part way through its body: closing the connection spares reading (and discarding) the rest,
        # as RFC 9110 allows for a 413; discarding 10 MB bodies at full speed starved /healthz of CPU.
        return JSONResponse(status_code=413, content={"error": str(error)}, headers={"connection": "close"})
    except DOMAIN_ERRORS as error:
        return JSONResponse(status_code=status_for(error), content={"error": str(error)})
    except HTTPException as error:
        return JSONResponse(status_code=error.status_code, content={"error": str(error.detail)})


def register_error_handlers(app: FastAPI) -> None:
    async def answer(_: Request, error: Exception) -> JSONResponse:
        return JSONResponse(status_code=status_for(error), content={"detail": str(error)})

    async def unexpected(_: Request, error: Exception) -> JSONResponse:
        # Runs outside every middleware (Starlette's outermost one), so it adds the security headers itself;
        # the traceback is logged by the server, never sent.
        body = {"detail": f"internal error ({type(error).__name__}); it has been logged"}
        return JSONResponse(status_code=500, content=body, headers=dict(RESPONSE_HEADERS))

    for error_type, _ in STATUS_BY_ERROR:
        app.add_exception_handler(error_type, answer)
    app.add_exception_handler(Exception, unexpected)
