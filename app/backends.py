"""Inference backends: which runtime executes a version's forward pass.

TensorFlow is the reference: training stores its accuracies through the same
`make_forward` graph, and publishing compiles that graph to OpenVINO IR (fp32), held
to TensorFlow on a fixed probe batch there and recorded with TensorFlow's answers
(`training/export.py`). At load the IR must give those answers again (to
`parity_tolerance`), so OpenVINO serves without TensorFlow ever being imported. A
version without IR, or whose IR fails its check, is served by TensorFlow, with the
reason shown in `GET /models`. The IR serves whenever it passes, under `auto` too:
choosing TensorFlow for speed would bring TensorFlow back into the serving process. Its
record keeps both runtimes' latency at publish (batch 1, 16, 32), so the choice can be
checked.

int8 cannot agree to 1e-4, so it is held to what was measured instead: a version made
by `python -m training quantize` carries an int8 model and its accuracy on the full
test set (lossless and JPEG q75) beside TensorFlow's; it serves only when it loses no
more than `int8_max_drop_points` on either, is no more than `int8_max_ece_increase`
less calibrated, and still gives the answers to the probe batch recorded at
quantization (its speed was measured when it was made: docs/benchmarks.md). Asking for
a backend that does not pass gives the next slower one.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np

from app import batch_shapes, heap
from training.core import openvino_runtime
from training.core.preprocessing import probe_images
from training.core.records import CompiledIR, Quantization

logger = logging.getLogger(__name__)

Predict = openvino_runtime.Predict  # uint8 (N, 32, 32, 3) -> float32 probabilities (N, 10), + novelty score.


class Backend(StrEnum):
    AUTO = "auto"  # The fastest installed backend that passes its parity check, else TensorFlow.
    TENSORFLOW = "tensorflow"
    OPENVINO = "openvino"
    OPENVINO_INT8 = "openvino-int8"  # The version's own int8 model (training/quantize.py), when it keeps accuracy.


# Asking for one backend means: that one, else the slower ones after it (TensorFlow always last).
FASTEST_FIRST = (Backend.OPENVINO_INT8, Backend.OPENVINO, Backend.TENSORFLOW)
INT8_GATED_CONDITIONS = ("lossless", "jpeg_q75")  # Where int8 must keep TensorFlow's accuracy.


@dataclass(frozen=True)
class BackendOptions:
    """What the loader needs from the settings, so this module never reads them itself. Built only by
    `Settings.backend_options()`, where each value has its default and its meaning."""

    requested: Backend
    threads: int
    parity_tolerance: float
    batch_size: int  # The micro-batcher's largest batch.
    int8_max_drop_points: float  # Most accuracy points int8 may lose on any gated condition.
    int8_max_ece_increase: float  # How much less calibrated (ECE) int8 may be than TensorFlow.
    int8_probe_tolerance: float
    int8_batch_size: int  # The micro-batcher's largest batch for a version served in int8.
    int8_fixed_batches: tuple[int, ...]  # Also compiled for, besides int8_batch_size; () for any size at once.
    novelty_quantile: float  # Share of hold-out images the novelty threshold keeps as in distribution.


@dataclass(frozen=True)
class Int8Model:
    """A version's int8 model file and what was measured of it when it was made."""

    path: Path
    quantization: Quantization


@dataclass(frozen=True)
class IRModel:
    """A version's fp32 OpenVINO IR and its record from publish time."""

    path: Path
    record: CompiledIR


@dataclass(frozen=True)
class VersionRuntimes:
    """What a version offers each backend. `tensorflow` builds the reference forward pass on demand:
    TensorFlow is imported only when it is called."""

    tensorflow: Callable[[], Predict]
    ir: IRModel | None = None
    int8: Int8Model | None = None


@dataclass(frozen=True)
class Compiled:
    backend: Backend
    predict: Predict
    refused: dict[str, str] = field(default_factory=dict)  # Backend -> why it does not serve this version.


def installed(backend: Backend) -> bool:
    if backend in (Backend.OPENVINO, Backend.OPENVINO_INT8):
        return importlib.util.find_spec("openvino") is not None
    return backend is Backend.TENSORFLOW


def disagreement(candidate: Predict, reference: Predict | np.ndarray, probe: np.ndarray) -> float:
    """The largest absolute difference from a reference backend's (or recorded) probabilities on the probe."""
    expected = reference if isinstance(reference, np.ndarray) else reference(probe)
    return float(np.max(np.abs(candidate(probe) - expected)))


def compile_version(runtimes: VersionRuntimes, options: BackendOptions) -> Compiled:
    """The backend that will serve a version: the requested one, or the fastest that passes."""
    start = 0 if options.requested is Backend.AUTO else FASTEST_FIRST.index(options.requested)
    refused: dict[str, str] = {}
    for backend in FASTEST_FIRST[start:]:
        if backend is Backend.TENSORFLOW:
            return Compiled(backend, runtimes.tensorflow(), refused)
        if not installed(backend):
            refused[backend] = f"{backend} is not installed"
            continue
        candidate, reason = _candidate(backend, runtimes, options)
        if candidate is None:
            refused[backend] = reason
            continue
        return Compiled(backend, candidate, refused)
    raise AssertionError("TensorFlow is always the last resort")  # pragma: no cover


def batch_size(backend: Backend, options: BackendOptions) -> int:
    """The micro-batcher's largest batch for a version on `backend` (measured best for int8: 16)."""
    return options.int8_batch_size if backend is Backend.OPENVINO_INT8 else options.batch_size


def _candidate(backend: Backend, runtimes: VersionRuntimes, options: BackendOptions) -> tuple[Predict | None, str]:
    """The backend's predict function if it passes its check, else None and why not."""
    if backend is Backend.OPENVINO:
        if runtimes.ir is None:
            return None, "this version has no OpenVINO IR (python -m training export NAME adds it)"
        return _checked(
            runtimes.ir.path,
            np.asarray(runtimes.ir.record.probe_probabilities, np.float32),
            options.parity_tolerance,
            against="TensorFlow's answers recorded at publish",
            threads=options.threads,
        )
    int8 = runtimes.int8
    if int8 is None:
        return None, "this version has no int8 model (python -m training quantize makes one)"
    lost = int8_loss(int8.quantization, options.int8_max_drop_points, options.int8_max_ece_increase)
    if lost:
        return None, lost
    return _checked(
        int8.path,
        np.asarray(int8.quantization.probe_probabilities, np.float32),
        options.int8_probe_tolerance,
        against="the answers recorded at quantization",
        threads=options.threads,
        fixed_batches=fixed_batches(options),
    )


def fixed_batches(options: BackendOptions) -> list[int] | None:
    """The batch sizes to compile an int8 model for (None: once, for any size). Only int8: compiled for a
    fixed size its passes ran 1.2-1.3x faster at every size; the fp32 IRs served 1.03-1.14x at the batches
    of a busy server (16 and up), not worth 10-15 MB a size (docs/benchmarks.md, stop 54)."""
    if not options.int8_fixed_batches:
        return None
    return sorted(
        {size for size in options.int8_fixed_batches if size < options.int8_batch_size} | {options.int8_batch_size}
    )


def _checked(
    path: Path,
    expected: np.ndarray,
    tolerance: float,
    against: str,
    threads: int,
    fixed_batches: list[int] | None = None,
) -> tuple[Predict | None, str]:
    """Load and compile an OpenVINO model, then hold its probe-batch answers to `expected`. With
    `fixed_batches`, compiled once per batch size instead (app/batch_shapes.py), each held to them."""
    try:
        if fixed_batches is None:
            candidate: Predict = openvino_runtime.compile_for_cpu(openvino_runtime.read_model(path), threads)
            gap = disagreement(candidate, expected, probe_images())
        else:
            passes = batch_shapes.compile_fixed(path, threads, fixed_batches)
            heap.release_freed()  # The compiles' working memory: ~10 MB otherwise kept.
            probe = probe_images()
            gap = max(_probe_gap(predict, size, probe, expected) for size, predict in passes.items())
            candidate = batch_shapes.FixedShapes(passes)
    except Exception as error:  # A load failure falls back; it never fails the version.
        return None, f"loading {path.parent.name}/{path.name} failed: {type(error).__name__}: {error}"
    if not gap <= tolerance:  # Written so that NaN is refused too.
        return None, (
            f"disagrees with {against} on the probe batch: max probability difference {gap:.2e} "
            f"> tolerance {tolerance:.0e}"
        )
    return candidate, ""


def _probe_gap(predict: Predict, size: int, probe: np.ndarray, expected: np.ndarray) -> float:
    """`disagreement` on a batch of `size`: the probe images repeated (or cut) to that many."""
    rows = np.resize(np.arange(len(probe)), size)
    return disagreement(predict, expected[rows], probe[rows])


def int8_loss(quantization: Quantization, max_drop_points: float, max_ece_increase: float) -> str | None:
    """Why the measured int8 accuracy or calibration is not good enough to serve, or None when it is."""
    for condition in INT8_GATED_CONDITIONS:
        drop = 100 * (quantization.reference_accuracy[condition] - quantization.accuracy[condition])
        if drop > max_drop_points:
            return f"int8 loses {drop:.2f} accuracy points on {condition} (limit {max_drop_points:g})"
    ece, reference = quantization.probability_scores.ece, quantization.reference_probability_scores.ece
    if ece - reference > max_ece_increase:
        return f"int8 is less calibrated: ECE {ece:.3f} against {reference:.3f} (limit +{max_ece_increase:g})"
    return None
