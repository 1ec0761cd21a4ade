"""What a protocol request means, decided once for every protocol: REST `/v2` and `/v1`, gRPC.

The protocol modules (`app.protocols.*`) only translate wire formats, and the routers and
the gRPC servicer only carry them; version numbers, readiness, model metadata and running
images through a model are answered here, as KServe's data plane answers them for all of
its protocols (kserve/protocol/dataplane.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app import metrics
from app.decoding import Pending
from app.errors import ModelNotFound, ModelNotReady
from app.protocols import open_inference as oip
from app.registry import ModelRegistry
from app.uploads import Decoder

MAX_VERSION_DIGITS = 9  # Versions are small integers; a longer number is a typo or an attack, not a version.


@dataclass(frozen=True)
class Inference:
    """The version that answered and its calibrated probabilities, one row per image, in order."""

    model: str
    version: int
    class_names: list[str]
    probabilities: np.ndarray


def parse_version(raw: str | None) -> int | None:
    """A version as protocols spell it (a path segment, a gRPC string); None or "" means the default."""
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_VERSION_DIGITS or int(raw) < 1:
        raise ModelNotFound(f"no version {raw!r}: versions are positive integers")
    return int(raw)


def server_ready(registry: ModelRegistry) -> bool:
    """Ready once the initial scan is done and some model answers by default: the one rule behind
    /readyz, /v2/health/ready, gRPC ServerReady and the gRPC health service."""
    return registry.ready.is_set() and registry.default_model() is not None


def model_ready(registry: ModelRegistry, name: str, version: int | None) -> bool:
    """Whether that version (default: the model's default) is in memory; unknown ones raise ModelNotFound."""
    try:
        registry.get(name, version)
    except ModelNotReady:
        return False
    return True


def model_metadata(registry: ModelRegistry, name: str, version: int | None) -> dict[str, Any]:
    """The Open Inference Protocol's model metadata (REST and gRPC alike)."""
    model, _ = registry.resolve(name, version)
    return {
        "name": model,
        "versions": [str(v) for v in registry.servable_versions(model)],
        "platform": oip.PLATFORM,
        "inputs": oip.input_metadata(),
        "outputs": oip.output_metadata(),
    }


async def infer(
    registry: ModelRegistry,
    decoder: Decoder,
    images: np.ndarray | Sequence[Pending],
    name: str | None,
    version: int | None = None,
    label: str | None = None,
) -> Inference:
    """Images through the addressed version (loaded first if need be) and the shared micro-batcher,
    counted in Prometheus by model, version and predicted class, whichever protocol asked.

    Encoded files go through the upload decoder, with its limits and memory budget.
    """
    async with registry.serve(name, version, label) as loaded:
        pixels = [image if isinstance(image, np.ndarray) else await decoder.decode(image) for image in images]
        start = time.perf_counter()
        probabilities = await loaded.predict_all(pixels)
        elapsed = time.perf_counter() - start
    answer = Inference(loaded.name, loaded.version, loaded.class_names, probabilities)
    _count(answer, elapsed)
    return answer


def _count(answer: Inference, elapsed: float) -> None:
    version = str(answer.version)
    seconds = metrics.INFERENCE_SECONDS.labels(answer.model, version)
    for best in answer.probabilities.argmax(axis=1):
        seconds.observe(elapsed)
        metrics.PREDICTIONS.labels(answer.model, version, answer.class_names[best]).inc()
