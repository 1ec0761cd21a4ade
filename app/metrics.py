"""The service's Prometheus metrics, created once per process (prometheus_client's registry is global)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)  # Seconds.


# Per route template (/v2/models/{name}/infer, not each URL): requests by status class, and latency in buckets
# for a service that answers in milliseconds. The names and labels are prometheus-fastapi-instrumentator's.
HTTP_REQUESTS = Counter(
    "http_requests_total", "Total number of requests by method, status and handler.", ["handler", "method", "status"]
)
HTTP_SECONDS = Histogram(
    "http_request_duration_seconds",
    "Seconds from a request's start to its answer's end, by handler and method.",
    ["handler", "method"],
    buckets=LATENCY_BUCKETS,
)
UNMATCHED = "none"  # Paths no route matched share one label, so a scanner's URLs cannot grow the label set.


class HTTPMetrics:
    """Counts each request and its latency under the route the router chose for it.

    prometheus-fastapi-instrumentator, which did this before, matches every request against every
    route a second time and builds a request and a response object around it: 11-14% of the event
    loop's CPU for a /predict, against 3-6% for this (bench/loop_cost.py; docs/benchmarks.md, stop 53).
    The router already writes its choice into the scope (`scope["route"]`); this reads it after the
    answer. /metrics and /static are not counted.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path == "/metrics" or path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500  # 500 unless an answer starts: an exception escaped.

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            handler = getattr(scope.get("route"), "path", UNMATCHED)
            HTTP_REQUESTS.labels(handler, scope["method"], f"{status // 100}xx").inc()
            HTTP_SECONDS.labels(handler, scope["method"]).observe(time.perf_counter() - start)


PREDICTIONS = Counter(
    "cifar_predictions_total",
    "Images classified, by model, version and predicted class.",
    ["model", "version", "label"],
)
INFERENCE_SECONDS = Histogram(
    "cifar_predict_seconds",
    "Time from a decoded image to its probabilities (queueing and batching included), by model.",
    ["model", "version"],
    buckets=LATENCY_BUCKETS,
)
OUT_OF_DISTRIBUTION = Counter(
    "cifar_out_of_distribution_total",
    "Images answered in_distribution = false (novelty score above the version's threshold), by model.",
    ["model", "version"],
)
BATCH_SIZE = Histogram(
    "cifar_batch_size", "Images per forward pass after micro-batching.", buckets=(1, 2, 4, 8, 16, 32, 64, 128)
)
# The inference thread's side of the batcher, as Triton reports compute apart from queueing: the rate of the
# sum is the share of the time the thread computes. Near 1, the model is what limits the answers and batches
# should grow; well under 1 at full load, the HTTP side (the event loop) is, and waiting for companions saves
# nothing. Passes of a tiny model take a fraction of a millisecond, hence the small buckets.
FORWARD_PASS_SECONDS = Histogram(
    "cifar_forward_pass_seconds",
    "Seconds each micro-batched forward pass computed (its batch's queueing excluded), every model together.",
    buckets=(0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)

# The prediction log (app/monitoring).
MONITORING_LOGGED = Counter("monitoring_logged_total", "Prediction records written to the prediction log.")
MONITORING_DROPPED = Counter(
    "monitoring_dropped_total", "Prediction records dropped: the log's queue was full or the database refused them."
)
# What the log says over the last MONITORING_WINDOW_HOURS, refreshed in the background (app/monitoring/report.py).


def _log_gauge(name: str, documentation: str) -> Gauge:
    """Per model and version; with several workers the most recent value of any of them (they read one log)."""
    return Gauge(name, documentation, ["model", "version"], multiprocess_mode="mostrecent")


LIVE_PREDICTIONS = _log_gauge("monitoring_predictions", "Logged predictions in the monitoring window.")
LIVE_ACCURACY = _log_gauge("monitoring_live_accuracy", "Accuracy on the predictions users labelled.")
LIVE_LABELLED = _log_gauge("monitoring_labelled", "Predictions users labelled in the monitoring window.")
CLASS_PSI = _log_gauge("monitoring_class_psi", "Population stability index of predicted classes against the test set.")
MEAN_TOP_PROBABILITY = _log_gauge("monitoring_mean_top_probability", "Mean top probability of the logged predictions.")
DRIFTED = _log_gauge("monitoring_drifted", "1 when the class distribution drifted past DRIFT_PSI_THRESHOLD.")
