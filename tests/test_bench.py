"""The benchmark scripts are not run in CI (they take minutes), but they must keep importing
what the project provides: a rename in training/ or app/ should fail here, not in a benchmark."""

from __future__ import annotations

import importlib
import os
import threading
import time

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
    "bench.core_use": "main",
    "bench.gil_wait": "main",
    "bench.machine": "describe",
}


@pytest.mark.parametrize("module", sorted(ENTRY_POINTS))
def test_benchmark_imports_resolve(module: str) -> None:
    assert callable(getattr(importlib.import_module(module), ENTRY_POINTS[module]))


def test_core_use_reads_each_thread_of_a_process_and_the_idle_cores() -> None:
    from bench import core_use

    start = time.thread_time()
    while time.thread_time() - start < 0.05:  # Burn CPU on this thread, so /proc has something to count.
        pass
    threads = core_use._thread_cpu(os.getpid())
    assert threading.get_native_id() in threads
    assert threads[threading.get_native_id()] >= 0.04
    assert core_use._idle_seconds() > 0
