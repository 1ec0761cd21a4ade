"""The benchmark scripts are not run in CI (they take minutes), but they must keep importing
what the project provides: a rename in training/ or app/ should fail here, not in a benchmark.
Their parts that a change elsewhere could silently turn into wrong figures are tested too."""

from __future__ import annotations

import importlib
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from app.backends import Backend
from app.config import Settings
from app.inference import load_servable
from training.core.classes import NUM_CLASSES
from training.core.preprocessing import probe_images

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
    "bench.pass_split": "main",
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


def test_accuracy_benches_score_the_ten_classes_not_the_novelty_score(novelty_store: Path) -> None:
    """A version with a novelty score answers it as an eleventh value per image; argmax over all of
    them counted it as a class (v15 read 40.72% for 93.53%), so the accuracy benches drop it."""
    from bench import backend_accuracy, int8_openvino

    folder = novelty_store / "model_1" / "3"  # int8, with the novelty score.
    images = probe_images(5)
    int8 = int8_openvino.served(folder, Backend.OPENVINO_INT8, threads=1)
    served = load_servable(folder, Settings(inference_backend=Backend.OPENVINO_INT8).backend_options())

    assert served.predict(images).shape == (5, NUM_CLASSES + 1)
    assert int8(images).shape == (5, NUM_CLASSES)
    assert backend_accuracy.in_batches(served.predict, images, size=2).shape == (5, NUM_CLASSES)


def test_the_paired_ratio_is_taken_round_by_round() -> None:
    """c=8 is about 90% of c=32 in the first three rounds, whatever the machine's speed; the last round's c=32 cell
    ran a quarter slow. Round by round, that is one outlier among four; the two cells' medians alone would
    put c=8 above c=32."""
    from bench.serve_throughput import paired_ratio

    eight, thirty_two = [450.0, 460.0, 340.0, 455.0], [500.0, 510.0, 380.0, 375.0]

    median, low, high = paired_ratio(eight, thirty_two)

    assert median == pytest.approx(np.median([0.9, 460 / 510, 340 / 380, 455 / 375]))
    assert np.median(eight) / np.median(thirty_two) > 1.0  # What the medians alone would say.
    assert low <= 0.9 <= high
    assert paired_ratio([450.0] * 5, [500.0] * 5) == pytest.approx((0.9, 0.9, 0.9))
