"""Inference backends: which runtime executes a version's forward pass.

TensorFlow is the reference: training stores its accuracies through the same
`make_forward` graph. A faster CPU runtime may serve instead (OpenVINO: the traced
graph converted once per version), but only after it has agreed with TensorFlow on
a fixed probe batch; a version it disagrees on, or cannot convert, is served by
TensorFlow, with the reason shown in `GET /models`. With `auto`, "faster" is
measured too, per version, at load: the candidate must beat TensorFlow on a single
image and on a full micro-batch, or TensorFlow keeps serving (tiny networks can be
dominated by a runtime's per-call cost). Conversion runs at load time in the
inference thread, never on the request path, and its result is cached on disk keyed
by the version's files and the runtime's version.

int8 cannot agree to 1e-4, so it is held to what was measured instead: a version made
by `python -m training quantize` carries an int8 model and its accuracy on the full
test set (lossless and JPEG q75) beside TensorFlow's; it serves only when it loses no
more than `int8_max_drop_points` on either, is no more than `int8_max_ece_increase`
less calibrated, and still gives the answers to the probe batch recorded at
quantization. Asking for a backend that does not pass gives the next slower one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from training.core.artifacts import Quantization
from training.core.preprocessing import INPUT_SHAPE, probe_images

logger = logging.getLogger(__name__)

Predict = Callable[[np.ndarray], np.ndarray]  # uint8 (N, 32, 32, 3) -> float32 probabilities (N, 10).


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
    """What the loader needs from the settings, so this module never reads them itself."""

    requested: Backend = Backend.AUTO
    threads: int = 1
    parity_tolerance: float = 1e-4
    cache_dir: Path | None = None
    batch_size: int = 32  # The micro-batcher's largest batch: `auto` compares speed at 1 and at this size.
    int8_max_drop_points: float = 0.1  # Most accuracy points int8 may lose on any gated condition.
    int8_max_ece_increase: float = 0.005  # How much less calibrated (ECE) int8 may be than TensorFlow.
    # int8 kernels differ a little between CPUs (VNNI or not); a wrong or damaged file differs by far more.
    int8_probe_tolerance: float = 1e-2
    int8_batch_size: int = 16  # The micro-batcher's largest batch for a version served in int8.


@dataclass(frozen=True)
class Int8Model:
    """A version's int8 model file and what was measured of it when it was made."""

    path: Path
    quantization: Quantization


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


def compile_forward(forward: Any, version_key: str, options: BackendOptions, int8: Int8Model | None = None) -> Compiled:
    """The backend that will serve a version: the requested one, or the fastest that passes.

    `forward` is the version's TensorFlow `tf.function` (the reference); `version_key`
    identifies the version's files for the conversion cache; `int8` is the version's
    int8 model, if it has one.
    """

    def reference(images: np.ndarray) -> np.ndarray:
        return np.asarray(forward(images).numpy())

    start = 0 if options.requested is Backend.AUTO else FASTEST_FIRST.index(options.requested)
    refused: dict[str, str] = {}
    for backend in FASTEST_FIRST[start:]:
        if backend is Backend.TENSORFLOW:
            return Compiled(backend, reference, refused)
        if not installed(backend):
            refused[backend] = f"{backend} is not installed"
            continue
        candidate, reason = _candidate(backend, forward, version_key, options, int8, reference)
        if candidate is not None and options.requested is Backend.AUTO:
            slower = slower_than(candidate, reference, batch_size(backend, options))
            if slower:
                candidate, reason = None, f"slower than tensorflow for this version ({slower})"
        if candidate is None:
            refused[backend] = reason
            continue
        return Compiled(backend, candidate, refused)
    raise AssertionError("TensorFlow is always the last resort")  # pragma: no cover


def batch_size(backend: Backend, options: BackendOptions) -> int:
    """The micro-batcher's largest batch for a version on `backend` (measured best for int8: 16)."""
    return options.int8_batch_size if backend is Backend.OPENVINO_INT8 else options.batch_size


def _candidate(
    backend: Backend,
    forward: Any,
    version_key: str,
    options: BackendOptions,
    int8: Int8Model | None,
    reference: Predict,
) -> tuple[Predict | None, str]:
    """The backend's predict function if it passes its check, else None and why not."""
    if backend is Backend.OPENVINO:
        return _checked(
            lambda: _converted(forward, version_key, options.cache_dir),
            reference,
            options.parity_tolerance,
            against="TensorFlow",
            failure="conversion failed",
            threads=options.threads,
        )
    if int8 is None:
        return None, "this version has no int8 model (python -m training quantize makes one)"
    lost = int8_loss(int8.quantization, options.int8_max_drop_points, options.int8_max_ece_increase)
    if lost:
        return None, lost
    return _checked(
        lambda: _read_openvino(int8.path),
        np.asarray(int8.quantization.probe_probabilities, np.float32),
        options.int8_probe_tolerance,
        against="the answers recorded at quantization",
        failure="loading the int8 model failed",
        threads=options.threads,
    )


def _checked(
    load: Callable[[], Any],
    expected: Predict | np.ndarray,
    tolerance: float,
    against: str,
    failure: str,
    threads: int,
) -> tuple[Predict | None, str]:
    """Load and compile an OpenVINO model, then hold its probe-batch answers to `expected`."""
    try:
        candidate = _openvino(load(), threads)
        gap = disagreement(candidate, expected, probe_images())
    except Exception as error:  # A conversion or load failure falls back; it never fails the version.
        return None, f"{failure}: {type(error).__name__}: {error}"
    if not gap <= tolerance:  # Written so that NaN is refused too.
        return None, (
            f"disagrees with {against} on the probe batch: max probability difference {gap:.2e} "
            f"> tolerance {tolerance:.0e}"
        )
    return candidate, ""


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


def slower_than(candidate: Predict, reference: Predict, batch_size: int) -> str | None:
    """None when `candidate` is at least as fast at batch 1 and at `batch_size`; else the timings."""
    for size in (1, batch_size):
        images = np.resize(probe_images(), (size, *INPUT_SHAPE))
        ours, theirs = _median_seconds(candidate, images), _median_seconds(reference, images)
        if ours > theirs:
            return f"{ours * 1000:.2f} ms against {theirs * 1000:.2f} ms for a batch of {size}"
    return None


def _median_seconds(predict: Predict, images: np.ndarray, repeats: int = 7) -> float:
    predict(images)  # Warm-up: first calls allocate.
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(images)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def _openvino(model: Any, threads: int) -> Predict:
    """An OpenVINO model compiled for CPU: one latency-oriented stream (the batcher sends one batch at a time)."""
    import openvino as ov

    compiled = ov.Core().compile_model(
        model,
        "CPU",
        {
            "PERFORMANCE_HINT": "LATENCY",
            # CPUs with bf16 or AMX default to bf16, which moves probabilities by up to ~0.04 here;
            # in an int8 model this applies to the layers left unquantized.
            "INFERENCE_PRECISION_HINT": "f32",
            "INFERENCE_NUM_THREADS": threads,
        },
    )
    request = compiled.create_infer_request()  # Used only from the single inference thread.

    def predict(images: np.ndarray) -> np.ndarray:
        return np.array(request.infer([np.ascontiguousarray(images, np.uint8)])[0], np.float32)

    return predict


def _read_openvino(path: Path) -> Any:
    import openvino as ov

    return ov.Core().read_model(path)


def _converted(forward: Any, version_key: str, cache_dir: Path | None) -> Any:
    """The OpenVINO model for a version, from the cache or converted now (then cached)."""
    import openvino as ov

    key = hashlib.sha256(f"{version_key}|openvino {ov.__version__}".encode()).hexdigest()[:16]
    cached = cache_dir / "openvino" / key / "model.xml" if cache_dir else None
    if cached is not None and cached.is_file():
        try:
            return _read_openvino(cached)
        except Exception as error:  # A damaged cache entry is converted again, not fatal.
            logger.warning("ignoring unreadable conversion cache %s: %s", cached.parent, error)
    model = ov.convert_model(forward.get_concrete_function())
    if cached is not None:
        _store(model, cached, ov)
    return model


def _store(model: Any, cached: Path, ov: Any) -> None:
    """Write the converted model beside its siblings, then rename: readers never see half a pair of files."""
    try:
        cached.parent.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cached.parent.parent))
        ov.save_model(model, staging / cached.name, compress_to_fp16=False)
        try:
            os.replace(staging, cached.parent)
        except OSError:  # Another process cached the same version first: theirs is as good.
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as error:  # A read-only cache only costs the conversion at the next start.
        logger.warning("could not cache the converted model in %s: %s", cached.parent, error)
