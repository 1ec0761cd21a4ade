"""The benchmark scripts are not run in CI (they take minutes), but they must keep importing
what the project provides: a rename in training/ or app/ should fail here, not in a benchmark."""

from __future__ import annotations

import importlib

import pytest

ENTRY_POINTS = {
    "bench.flops": "forward_flops",
    "bench.serve_throughput": "main",
    "bench.train_throughput": "main",
    "bench.train_precision": "main",
    "bench.whitened_convnet_run": "main",
    "bench.robustness_report": "main",
    "bench.corruption_report": "main",
    "bench.ood_report": "main",
    "bench.robust_recipes": "main",
    "bench.shift_calibration": "main",
    "bench.decode_memory": "main",
    "bench.tta_views": "main",
    "bench.backend_accuracy": "main",
    "bench.int8_openvino": "main",
    "bench.distributed_scaling": "main",
    "bench.startup_memory": "main",
    "bench.loop_cost": "main",
    "bench.machine": "describe",
}


@pytest.mark.parametrize("module", sorted(ENTRY_POINTS))
def test_benchmark_imports_resolve(module: str) -> None:
    assert callable(getattr(importlib.import_module(module), ENTRY_POINTS[module]))
