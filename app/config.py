"""All of the service's configuration, read once from the environment (or a .env file)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, PositiveInt
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.backends import Backend, BackendOptions
from app.batching import BatchPolicy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    models_dir: Path = Field(Path("models"), description="The model store, models/<name>/<version>/.")
    default_model: str | None = Field(None, description="Model used when a request names none; else the most accurate.")
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0, description="Largest request body accepted (413 above).")
    # 25 M covers a 24 MP camera (6000 x 4000) and every phone's default mode. Decoding takes up to
    # ~8 bytes per pixel at its peak, so the decode slots bound the burst (tests/reliability/test_memory.py).
    max_image_pixels: int = Field(25_000_000, gt=0, description="Largest declared width x height (413 above).")
    max_request_pixels: int = Field(
        100_000_000,
        gt=0,
        description=(
            "Most pixels the images of one request may declare in all (413 for the image past it): four photos at "
            "the per-image limit, a few seconds of decoding, so one request cannot hold the decoders for minutes."
        ),
    )
    max_json_values: int = Field(
        250_000,
        gt=0,
        description=(
            "Most values a JSON body (or Open Inference Protocol JSON header) may hold, counted by its commas, "
            "brackets and braces; 413 beyond. Parsing holds the event loop, ~45 ms for 250,000 of the worst kind; "
            "about 80 images as pixel lists. Larger batches: binary tensors, or base64 image files (one value each)."
        ),
    )
    max_concurrent_decodes: int = Field(
        2, gt=0, description="Uploads over 16 KB decoded at once; bounds the memory a burst of large images takes."
    )
    max_batch_files: int = Field(32, gt=0, description="Most files in one POST /predict/batch.")
    max_infer_batch: int = Field(256, gt=0, description="Most images in one v1/v2 protocol request.")
    batch_max_size: int = Field(
        32,
        gt=0,
        description="Micro-batching: most images in one forward pass (an upper bound: under adaptive and eager, "
        "another model's clients run in two alternating groups of half of them when one more pass costs less than "
        "the event loop's turn it hides); twice that for a model whose compute is under a fifth of the time (the "
        "event loop limits it, app/batching.py).",
    )
    int8_batch_max_size: int = Field(
        16,
        gt=0,
        # Measured (docs/benchmarks.md): the int8 default model serves ~9% more requests at c=32 with 16
        # than with 32; model_1 serves fewer with 16, so the general size stays 32.
        description="Micro-batching for versions served by openvino-int8 (the heavy default model).",
    )
    int8_fixed_batches: list[PositiveInt] = Field(
        [1, 2, 8],
        # Each size costs 10-15 MB and ~0.1 s of CPU at load (docs/benchmarks.md, stop 54).
        description="Batch sizes an openvino-int8 version is also compiled for, besides INT8_BATCH_MAX_SIZE: "
        "compiled for fixed sizes its passes run 1.2-1.3x faster, and a batch of another size runs as the "
        "cheapest sequence of them (app/batch_shapes.py); [] compiles it once for any batch size instead.",
    )
    batch_max_wait_ms: float = Field(
        10.0,
        ge=0,
        # A bound, not the wait: adaptive waits for each expected request only a forward pass's fixed cost.
        # At 2 ms eight clients of the default model could not regroup into one batch (docs/benchmarks.md).
        description="Micro-batching: the longest a batch waits for the requests its policy expects (an upper bound).",
    )
    batch_policy: BatchPolicy = Field(
        BatchPolicy.ADAPTIVE,
        description=(
            "Micro-batching: adaptive (wait only for the clients of the last batch and those queued behind it, each "
            "for at most what it saves: a forward pass's fixed cost, measured, times the inference thread's busy "
            "share), eager (never wait) or fixed (up to BATCH_MAX_WAIT_MS for a full batch after any batch of "
            "several; the former rule). Under adaptive and eager, while the queue does not shrink, the inference "
            "thread takes the next batch itself; fixed sends every batch from the event loop."
        ),
    )
    promotion_margin_points: float = Field(
        1.0,
        ge=0,
        description="A new version more than this many accuracy points below the served one is held back.",
    )
    max_loaded_versions: int = Field(
        4,
        gt=0,
        description="Per model: versions kept in memory; beyond it the least recently used one that is not "
        "the default, labelled or pinned (nor answering) is unloaded. Others load on their first request.",
    )
    version_load_timeout_seconds: float = Field(
        30.0, gt=0, description="How long a request for a version not yet in memory waits for it to load (503 after)."
    )
    poll_interval_seconds: float = Field(2.0, ge=0, description="How often MODELS_DIR is rescanned; 0 turns it off.")
    host: str = Field("127.0.0.1", description="Address `python -m app` listens on (0.0.0.0 in the image).")
    port: int = Field(8000, gt=0, lt=65536, description="Port `python -m app` listens on.")
    gil_switch_interval_ms: float = Field(
        0.2,
        gt=0,
        le=5,
        description=(
            "Python's switch interval during a pass the inference thread chains (the event loop busy feeding it): "
            "how long the loop may keep the GIL from the pass once it is done and needs it back to hand over its "
            "answers. Elsewhere Python's own, 5 ms, which a chained pass waited while the cores idled; 5 turns "
            "this off."
        ),
    )
    gc_young_threshold: int = Field(
        20_000,
        gt=0,
        description=(
            "Objects allocated between two collections of Python's youngest garbage generation (Python's default: "
            "700, a collection every 6-9 requests, moving the objects of requests still in flight to older "
            "generations that are then walked again and again). Refcounting frees a request's objects either way."
        ),
    )
    monitoring_enabled: bool = Field(True, description="Record every prediction in the prediction log.")
    monitoring_db: str = Field(
        "sqlite:///data/monitoring.db",
        description="The prediction log, a SQLAlchemy URL: a SQLite file (relative paths from the working "
        "directory) or PostgreSQL (postgresql+pg8000://user:password@host/db) when replicas share one log.",
    )
    monitoring_queue_size: int = Field(
        10_000, gt=0, description="Records waiting for the log's writer; beyond, they are dropped and counted."
    )
    monitoring_retention_days: float = Field(30.0, gt=0, description="Logged predictions older than this are deleted.")
    monitoring_window_hours: float = Field(
        24.0, gt=0, description="The window of the monitoring gauges on /metrics (GET /monitoring takes `since`)."
    )
    log_images: bool = Field(False, description="Also store each prediction's 32x32 pixels (PNG) in the log.")
    drift_psi_threshold: float = Field(
        0.2, gt=0, description="Predicted classes drifted from the test set's above this population stability index."
    )
    drift_min_predictions: int = Field(100, gt=0, description="Fewer predictions in a window: no drift verdict.")
    shutdown_grace_seconds: float = Field(
        5.0, ge=0, description="On SIGTERM, how long requests and gRPC calls in progress may finish (then cancelled)."
    )
    grpc_port: int = Field(
        8081, ge=0, lt=65536, description="Port of the Open Inference Protocol over gRPC, beside HTTP; 0 turns it off."
    )
    grpc_max_concurrent_rpcs: int = Field(
        256, gt=0, description="gRPC calls in progress at once, per worker; RESOURCE_EXHAUSTED beyond."
    )
    grpc_keepalive_seconds: float = Field(
        60.0, gt=0, description="gRPC: ping a connection idle this long; clients may not ping more often."
    )
    grpc_keepalive_timeout_seconds: float = Field(
        20.0, gt=0, description="gRPC: close a connection whose ping is not answered within this time."
    )
    prometheus_multiproc_dir: Path | None = Field(
        None, description="With WORKERS > 1: where the workers' metric files go (default: a new temporary folder)."
    )
    workers: int = Field(
        1, gt=0, description="Server processes `python -m app` starts; each gets CPUs / WORKERS inference threads."
    )
    keep_alive_seconds: int = Field(5, gt=0, description="How long an idle keep-alive connection is kept open.")
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="A request's headers must arrive within this time, or the connection is closed."
    )
    body_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description=(
            "A request's body must arrive within this time of its headers, or the client gets 408 and the "
            "connection is closed (a 10 MB upload needs about 1.4 Mbit/s)."
        ),
    )
    max_connections: int = Field(
        512, gt=0, description="Connections and requests in progress at once, per worker; 503 beyond."
    )
    tf_intra_op_threads: int | None = Field(
        None, description="Threads per forward pass (TensorFlow, OpenVINO); default: CPUs / workers."
    )
    inference_backend: Backend = Field(
        Backend.AUTO,
        description=(
            "Forward-pass runtime: auto (the fastest installed that passes its check), openvino-int8 (a version's "
            "quantized model), openvino, tensorflow. A backend that does not pass falls back to the next one."
        ),
    )
    backend_parity_tolerance: float = Field(
        1e-4,
        gt=0,
        description="Largest probability difference OpenVINO IR may show from TensorFlow's recorded probe answers.",
    )
    int8_max_drop_points: float = Field(
        0.1, ge=0, description="Most accuracy points (lossless or JPEG q75) an int8 model may lose and still serve."
    )
    int8_max_ece_increase: float = Field(
        0.005, ge=0, description="How much higher an int8 model's expected calibration error may be than TensorFlow's."
    )
    int8_probe_tolerance: float = Field(
        1e-2, gt=0, description="Largest difference an int8 model may show from its recorded probe-batch answers."
    )
    ood_threshold_quantile: float = Field(
        0.95,
        gt=0,
        lt=1,
        description=(
            "Share of held-out training images the novelty threshold keeps as in distribution: higher flags "
            "fewer images as none of the ten classes."
        ),
    )
    log_level: str = Field("info", description="Python logging level.")

    def intra_op_threads(self) -> int:
        return self.tf_intra_op_threads or max(1, (os.cpu_count() or 1) // self.workers)

    def backend_options(self) -> BackendOptions:
        return BackendOptions(
            requested=self.inference_backend,
            threads=self.intra_op_threads(),
            parity_tolerance=self.backend_parity_tolerance,
            batch_size=self.batch_max_size,
            int8_max_drop_points=self.int8_max_drop_points,
            int8_max_ece_increase=self.int8_max_ece_increase,
            int8_probe_tolerance=self.int8_probe_tolerance,
            int8_batch_size=self.int8_batch_max_size,
            int8_fixed_batches=tuple(self.int8_fixed_batches),
            novelty_quantile=self.ood_threshold_quantile,
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
