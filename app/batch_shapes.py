"""Compiled for fixed batch sizes: an int8 model's passes run 1.2-1.3x faster than compiled for any size.

Every IR's batch dimension is dynamic. Compiled that way, OpenVINO's CPU plugin runs the element-wise
operations between the int8 default model's quantized convolutions (its GELUs) one by one; compiled
for one batch size it fuses each chain of them into one generated kernel (a "Subgraph"), and a pass
ran 1.2-1.3x faster at every size from 1 to 64 (the fp32 IRs: 1.03-1.14x at 16 and up). Served this
way, the default model picks the same class for each of the 10,000 test images as compiled for any
size, its probabilities within 0.0072 (docs/benchmarks.md, stop 54).

Each size costs a compile (~0.1 s of CPU, 10-15 MB), so an int8 version is compiled for a few sizes
(`INT8_FIXED_BATCHES` and the micro-batcher's largest batch), and a batch of any other size runs as
the cheapest sequence of those passes, the last one padded with blank images: four images as two
passes of two, seven as one of eight. TF Serving pads every batch up to the next of its
`allowed_batch_sizes`; weighing padding against splitting by each size's cost, timed at load, also
covers sizes far from the next one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from training.core import openvino_runtime
from training.core.preprocessing import INPUT_SHAPE

Predict = Callable[[np.ndarray], np.ndarray]
TIMED_PASSES = 2  # Per size at load, after its probe check warmed it up; the fastest is its cost.


def compile_fixed(path: Path, threads: int, sizes: Sequence[int]) -> dict[int, Predict]:
    """The IR at `path` compiled once per batch size, `threads` at a time (OpenVINO compiles without the GIL)."""
    model = openvino_runtime.read_model(path)

    def compiled(size: int) -> Predict:
        fixed = model.clone()
        fixed.reshape([size, *INPUT_SHAPE])
        return openvino_runtime.compile_for_cpu(fixed, threads)

    with ThreadPoolExecutor(threads) as pool:
        return dict(zip(sizes, pool.map(compiled, sizes), strict=True))


def cheapest_plans(costs: dict[int, float], most: int) -> list[tuple[int, ...]]:
    """For every count of images up to `most`, the compiled sizes to run, in order, whose costs add up
    to the least while holding that many (the last pass padded when the images do not fill it)."""
    least = [0.0] + [math.inf] * most
    plans: list[tuple[int, ...]] = [()] * (most + 1)
    for count in range(1, most + 1):
        for size, cost in costs.items():
            rest = max(0, count - size)
            if cost + least[rest] < least[count]:
                least[count], plans[count] = cost + least[rest], (size, *plans[rest])
    return plans


def timed(predict: Predict, size: int) -> float:
    """Seconds a pass of `size` blank images takes: the fastest of a few (the first ones warm it up)."""
    images = np.zeros((size, *INPUT_SHAPE), np.uint8)
    seconds = []
    for _ in range(TIMED_PASSES):
        start = time.perf_counter()
        predict(images)
        seconds.append(time.perf_counter() - start)
    return min(seconds)


class FixedShapes:
    """A forward pass for any number of images, run on passes compiled for a few fixed batch sizes.

    Each size's pass is timed when this is built, and the plans follow from those costs. Like the
    passes it is made of, it is for one thread at a time (the micro-batcher's inference thread).
    """

    def __init__(self, passes: dict[int, Predict]) -> None:
        self._passes = passes
        self._largest = max(passes)
        costs = {size: timed(predict, size) for size, predict in passes.items()}
        self._plans = cheapest_plans(costs, 2 * self._largest)

    def plan(self, count: int) -> tuple[int, ...]:
        """The passes that run `count` images; past the planned counts, whole passes of the largest size first."""
        extra = max(0, math.ceil((count - (len(self._plans) - 1)) / self._largest))
        return (self._largest,) * extra + self._plans[count - extra * self._largest]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        outputs, start = [], 0
        for size in self.plan(len(images)):
            part = images[start : start + size]
            start += size
            filled = len(part)
            if filled < size:
                part = np.concatenate([part, np.zeros((size - filled, *part.shape[1:]), part.dtype)])
            outputs.append(self._passes[size](part)[:filled])
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)
