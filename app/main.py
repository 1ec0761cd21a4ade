"""Builds the FastAPI application; `uvicorn app.main:app` serves it.

Nothing heavy happens at import: the lifespan starts loading the model store in the
background (so /healthz answers at once and /readyz says 503 until models are
warm), then keeps polling the store for new versions.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from prometheus_fastapi_instrumentator import Instrumentator

from app import __version__
from app.config import Settings, get_settings
from app.dataplane import DataPlane
from app.errors import register_error_handlers
from app.metrics import HTTPMetrics
from app.monitoring.log import PredictionLog
from app.registry import ModelRegistry
from app.routers import health, models, monitoring, open_inference, predict, tf_serving
from app.security import DOCS_ASSETS_URL, SecurityHeaders
from app.uploads import BodySizeLimit, Decoder

if TYPE_CHECKING:
    from app.grpc_server import GRPCServer

STATIC_DIR = Path(__file__).parent / "static"
logger = logging.getLogger(__name__)


async def _load_then_poll(registry: ModelRegistry) -> None:
    try:
        await registry.refresh()
    finally:
        registry.ready.set()
    if registry.settings.poll_interval_seconds > 0:
        await registry.poll()


def _reload_on_hangup(registry: ModelRegistry, background: list[asyncio.Task[None]]) -> None:
    """SIGHUP rescans the store and the serving policies at once, in this process: nothing restarts and
    requests in flight are untouched (with WORKERS > 1 uvicorn's supervisor receives it and restarts the
    workers one at a time instead, each ready before the one it replaces stops)."""

    def reload() -> None:
        logger.info("SIGHUP: rescanning %s and its serving policies", registry.settings.models_dir)
        background.append(asyncio.create_task(registry.refresh()))

    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
    except (NotImplementedError, RuntimeError, ValueError):  # Not the main thread (a test client), or Windows.
        logger.debug("SIGHUP not handled in this thread")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    # Here, in the serving process, not in create_app: importing app.main (tests, tools) must not turn on
    # INFO logging for the importer's whole process.
    logging.basicConfig(level=settings.log_level.upper())
    # Python collects its youngest generation every 700 allocations by default: for a small model's
    # /predict, a collection every 6-9 requests, 3-5% of the event loop's CPU, more as more requests are in
    # flight (their objects move to older generations, walked again and again; docs/benchmarks.md, stop 51).
    # Refcounting frees a request's objects either way; only cycles wait for a collection.
    collector = gc.get_threshold()
    gc.set_threshold(settings.gc_young_threshold, *collector[1:])
    registry = ModelRegistry(settings)
    log = _prediction_log(settings)
    dataplane = DataPlane(registry, app.state.decoder, log)
    app.state.registry, app.state.dataplane = registry, dataplane
    background = [asyncio.create_task(_load_then_poll(registry))]
    if log is not None:
        background.append(asyncio.create_task(monitoring.refresh_gauges_forever(log, registry, settings)))
    grpc_server = await _start_grpc(dataplane, settings)
    _reload_on_hangup(registry, background)
    yield
    if grpc_server is not None:  # Before the registry closes: calls in flight still need their model.
        await grpc_server.stop(settings.shutdown_grace_seconds)
    for task in background:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await registry.close()
    if log is not None:  # What is queued is written before the process goes.
        await asyncio.to_thread(log.close)
    gc.set_threshold(*collector)


def _prediction_log(settings: Settings) -> PredictionLog | None:
    if not settings.monitoring_enabled:
        return None
    log = PredictionLog(
        settings.monitoring_db,
        queue_size=settings.monitoring_queue_size,
        retention_days=settings.monitoring_retention_days,
        log_images=settings.log_images,
    )
    log.start()
    return log


async def _start_grpc(dataplane: DataPlane, settings: Settings) -> GRPCServer | None:
    """The gRPC protocol beside HTTP, unless GRPC_PORT is 0 (grpcio is imported only then)."""
    if settings.grpc_port == 0:
        return None
    from app.grpc_server import GRPCServer

    server = GRPCServer(dataplane, settings)
    await server.start()
    return server


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPIOffline(  # FastAPI whose /docs and /redoc load Swagger UI and ReDoc from the service, not a CDN.
        static_url=DOCS_ASSETS_URL,
        title="CIFAR-10 classification service",
        description="Classify images into the ten CIFAR-10 classes and inspect the models that do it.",
        version=__version__,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.decoder = Decoder(settings.max_image_pixels, settings.max_concurrent_decodes, settings.max_request_pixels)
    register_error_handlers(app)
    app.include_router(predict.router)
    app.include_router(models.router)
    app.include_router(health.router)
    app.include_router(open_inference.router)
    app.include_router(tf_serving.router)
    app.include_router(monitoring.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def read_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    Instrumentator().expose(app, include_in_schema=False)  # /metrics, also across workers (multiprocess mode).
    app.add_middleware(HTTPMetrics)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(SecurityHeaders)
    return app


app = create_app()
