"""Prometheus metrics beyond the per-endpoint ones prometheus-fastapi-instrumentator records."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PREDICTIONS = Counter(
    "cifar_predictions_total",
    "Images classified, by model, version and predicted class.",
    ["model", "version", "label"],
)
INFERENCE_SECONDS = Histogram(
    "cifar_predict_seconds",
    "Time from a decoded image to its probabilities (queueing and batching included), by model.",
    ["model", "version"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
BATCH_SIZE = Histogram(
    "cifar_batch_size", "Images per forward pass after micro-batching.", buckets=(1, 2, 4, 8, 16, 32, 64, 128)
)
