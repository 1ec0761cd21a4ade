"""What a prediction request means, decided once for every surface: `/predict`, REST `/v2` and `/v1`, gRPC.

The protocol modules (`app.protocols.*`) only translate wire formats, and the routers and
the gRPC servicer only carry them; version numbers, readiness, model metadata, decoding,
running images through a model, counting the answers and recording them in the
prediction log happen here, as KServe's data plane does for all of its protocols
(kserve/protocol/dataplane.py). Every answered image gets its `prediction_id` here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from app import metrics
from app.decoding import Pending
from app.errors import ModelNotFound, ModelNotReady
from app.monitoring.log import PredictionLog, Record
from app.parsing import ascii_integer
from app.protocols import open_inference as oip
from app.registry import ModelRegistry
from app.uploads import Decoder
from training.core.novelty import split_rows

# The protocols' response header (and gRPC response parameter) with each image's id, comma-separated in input order.
PREDICTION_IDS = "Prediction-Id"
MAX_VERSION_DIGITS = 9  # Versions are small integers; a longer number is a typo or an attack, not a version.


@dataclass(frozen=True)
class Inference:
    """The version that answered, its calibrated probabilities (one row per image, in order), each
    image's novelty score and verdict (None for a version without a score) and its id in the log."""

    model: str
    version: int
    class_names: list[str]
    probabilities: np.ndarray
    prediction_ids: list[str]
    ood_scores: np.ndarray | None = None  # Higher: less like the training images.
    in_distribution: np.ndarray | None = None  # Score at or below the version's threshold.


def parse_version(raw: str | None) -> int | None:
    """A version as protocols spell it (a path segment, a gRPC string); None or "" means the default."""
    if raw is None or raw == "":
        return None
    number = ascii_integer(raw, MAX_VERSION_DIGITS)
    if number is None or number < 1 or raw != raw.strip():
        raise ModelNotFound(f"no version {raw[:40]!r}: versions are positive integers")
    return number


class DataPlane:
    """The registry, the decoder and the prediction log behind every prediction surface."""

    def __init__(self, registry: ModelRegistry, decoder: Decoder, log: PredictionLog | None = None) -> None:
        self.registry = registry
        self.decoder = decoder
        self.log = log  # None: MONITORING_ENABLED=false.

    def server_ready(self) -> bool:
        """Ready once the initial scan is done and some model answers by default: the one rule behind
        /readyz, /v2/health/ready, gRPC ServerReady and the gRPC health service."""
        return self.registry.ready.is_set() and self.registry.default_model() is not None

    def resolve(self, name: str | None, version: int | None = None, label: str | None = None) -> tuple[str, int]:
        """(model, version) a request addresses (ModelNotFound, ModelNotReady): checked before a body is read."""
        return self.registry.resolve(name, version, label)

    def model_ready(self, name: str, version: int | None) -> bool:
        """Whether that version (default: the model's default) is in memory; unknown ones raise ModelNotFound."""
        try:
            self.registry.get(name, version)
        except ModelNotReady:
            return False
        return True

    def model_metadata(self, name: str, version: int | None) -> dict[str, Any]:
        """The Open Inference Protocol's model metadata (REST and gRPC alike)."""
        model, number = self.registry.resolve(name, version)
        novelty = self.registry.artifact(model, number).metadata.novelty is not None
        return {
            "name": model,
            "versions": [str(v) for v in self.registry.servable_versions(model)],
            "platform": oip.PLATFORM,
            "inputs": oip.input_metadata(),
            "outputs": oip.output_metadata(novelty),
        }

    async def infer(
        self,
        images: np.ndarray | Sequence[Pending],
        name: str | None,
        version: int | None = None,
        label: str | None = None,
        endpoint: str = "predict",
    ) -> Inference:
        """Images through the addressed version (loaded first if need be) and the shared micro-batcher;
        each answer counted in Prometheus and recorded in the prediction log, whichever surface asked.

        Encoded files go through the upload decoder, with its limits and memory budget.
        """
        async with self.registry.serve(name, version, label) as loaded:
            budget = self.decoder.budget()
            pixels = [
                image if isinstance(image, np.ndarray) else await self.decoder.decode(image, budget) for image in images
            ]
            start = time.perf_counter()
            rows = await loaded.predict_all(pixels)
            elapsed = time.perf_counter() - start
        probabilities, scores = split_rows(rows)
        threshold = loaded.novelty.threshold
        verdicts = None if scores is None or threshold is None else scores <= threshold
        ids = [uuid.uuid4().hex for _ in pixels]
        answer = Inference(loaded.name, loaded.version, loaded.class_names, probabilities, ids, scores, verdicts)
        _count(answer, elapsed)
        if self.log is not None:
            self.log.record(_records(answer, pixels, elapsed, endpoint))
        return answer


def _count(answer: Inference, elapsed: float) -> None:
    version = str(answer.version)
    seconds = metrics.INFERENCE_SECONDS.labels(answer.model, version)
    for best in answer.probabilities.argmax(axis=1):
        seconds.observe(elapsed)
        metrics.PREDICTIONS.labels(answer.model, version, answer.class_names[best]).inc()
    if answer.in_distribution is not None:
        unknown = int((~answer.in_distribution).sum())
        if unknown:
            metrics.OUT_OF_DISTRIBUTION.labels(answer.model, version).inc(unknown)


def _records(answer: Inference, pixels: list[np.ndarray], elapsed: float, endpoint: str) -> list[Record]:
    """The log's records of one answer, built with Python values taken out of the arrays in one call each
    (`tolist`), not a NumPy scalar per field: this runs on the event loop for every image."""
    now = datetime.now(UTC)
    best = answer.probabilities.argmax(axis=1)
    top = answer.probabilities[np.arange(len(best)), best].tolist()
    none = [None] * len(pixels)
    scores = none if answer.ood_scores is None else np.asarray(answer.ood_scores, dtype=float).tolist()
    verdicts = none if answer.in_distribution is None else np.asarray(answer.in_distribution, dtype=bool).tolist()
    return [
        Record(
            id=prediction_id,
            created_at=now,
            model=answer.model,
            version=answer.version,
            endpoint=endpoint,
            class_index=index,
            class_name=answer.class_names[index],
            probability=probability,
            latency_ms=elapsed * 1000,
            pixels=image,
            ood_score=score,
            in_distribution=verdict,
        )
        for prediction_id, index, probability, image, score, verdict in zip(
            answer.prediction_ids, best.tolist(), top, pixels, scores, verdicts, strict=True
        )
    ]
