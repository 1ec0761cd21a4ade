"""Fixed batch shapes: any batch runs on passes compiled for a few sizes, the cheapest way, answering as before."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from app.backends import Backend, installed
from app.batch_shapes import FixedShapes, cheapest_plans, compile_fixed
from app.config import Settings
from tests.utils.data import COMMITTED_MODELS
from training.core import artifacts, openvino_runtime

INT8_PROBE_TOLERANCE = Settings().int8_probe_tolerance
# Seconds per pass by batch size, shaped like the int8 default model's (docs/benchmarks.md, stop 54).
COSTS = {1: 0.9, 2: 1.3, 8: 3.8, 16: 7.0}


def test_a_batch_between_sizes_splits_when_that_is_cheaper_than_padding() -> None:
    plans = cheapest_plans(COSTS, 32)
    assert plans[4] == (2, 2)  # 2.6 s against 3.8 for one pass of eight, half blank.
    assert plans[3] == (1, 2)


def test_a_batch_just_under_a_size_is_padded_up_to_it() -> None:
    plans = cheapest_plans(COSTS, 32)
    assert plans[7] == (8,)  # 3.8 s against 4.8 for 2 + 2 + 2 + 1.
    assert plans[15] == (16,)


def test_the_compiled_sizes_run_alone() -> None:
    plans = cheapest_plans(COSTS, 32)
    assert [plans[size] for size in COSTS] == [(size,) for size in COSTS]


def _numbering_pass(size: int, calls: list[int]) -> Callable[[np.ndarray], np.ndarray]:
    """A stand-in pass compiled for `size`: refuses any other shape and answers each image's first pixel."""

    def predict(images: np.ndarray) -> np.ndarray:
        assert images.shape == (size, 32, 32, 3), "a fixed-shape pass gets exactly its size"
        calls.append(size)
        return images[:, 0, 0, :1].astype(np.float32)

    return predict


def _fixed_shapes(sizes: list[int]) -> tuple[FixedShapes, list[int]]:
    calls: list[int] = []
    shapes = FixedShapes({size: _numbering_pass(size, calls) for size in sizes})
    calls.clear()  # The timing passes at construction.
    return shapes, calls


@pytest.mark.parametrize("count", [1, 3, 5, 7, 8, 9, 17, 40])
def test_every_image_gets_its_own_row_in_order_whatever_the_count(count: int) -> None:
    shapes, calls = _fixed_shapes([1, 2, 8])
    images = np.zeros((count, 32, 32, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(1, count + 1)
    rows = shapes(images)
    assert rows[:, 0].tolist() == list(range(1, count + 1))  # No padding row comes back.
    assert sum(calls) >= count and calls == list(shapes.plan(count))


def test_past_twice_the_largest_size_whole_passes_of_it_come_first() -> None:
    shapes, _ = _fixed_shapes([1, 2, 8])
    assert shapes.plan(40)[:3] == (8, 8, 8)
    assert sum(shapes.plan(40)) >= 40


@pytest.mark.skipif(not installed(Backend.OPENVINO), reason="openvino is not installed")
def test_the_default_model_answers_as_compiled_for_any_batch_size() -> None:
    """A committed int8 model (the default's), padded and split, answers as one compile for any size does, within
    the tolerance int8 is held to at load (kernels for other shapes may round an int8 sum differently)."""
    quantized = COMMITTED_MODELS.glob(f"whitened_convnet/*/{artifacts.INT8_DIR}/{artifacts.INT8_MODEL_FILE}")
    ir = max(quantized, key=lambda path: int(path.parent.parent.name))  # The newest: the default.
    shapes = FixedShapes(compile_fixed(ir, 2, [1, 2, 8]))
    dynamic = openvino_runtime.compile_for_cpu(openvino_runtime.read_model(ir), 2)
    images = np.random.default_rng(0).integers(0, 256, (19, 32, 32, 3), dtype=np.uint8)
    for count in (1, 4, 5, 7, 19):
        np.testing.assert_allclose(shapes(images[:count]), dynamic(images[:count]), atol=INT8_PROBE_TOLERANCE)
