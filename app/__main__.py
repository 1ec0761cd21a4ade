"""`python -m app`: the service in uvicorn with WORKERS processes (what `make serve` and the image run).

With several workers each is a separate process with its own copy of the models and
TensorFlow/OpenVINO threads (CPUs / WORKERS each), so Prometheus counters would be
per process; they are kept in a shared folder instead (prometheus_client's
multiprocess mode), which /metrics in any worker sums, so a scrape sees the whole service.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import uvicorn

from app.config import get_settings
from app.connections import DeadlineProtocol

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_metrics(configured: Path | None) -> Path:
    """An empty folder for the workers' metric files; must exist before any worker imports prometheus_client,
    which finds it in the environment."""
    folder = configured or Path(tempfile.mkdtemp(prefix="cifar10-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):  # Counts from an earlier run must not carry over; nothing else is touched.
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


def main() -> None:
    settings = get_settings()
    if settings.workers > 1:
        prepare_multiprocess_metrics(settings.prometheus_multiproc_dir)
    uvicorn.run(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level.lower(),
        timeout_keep_alive=settings.keep_alive_seconds,
        server_header=False,  # No "server: uvicorn" banner on every response.
        http=DeadlineProtocol,
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),  # Then cancelled: shutdown never hangs.
    )


if __name__ == "__main__":
    main()
