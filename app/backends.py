"""Inference backends: which runtime executes a version's forward pass.

TensorFlow is the reference: training stores its accuracies through the same
`make_forward` graph. A faster CPU runtime may serve instead (OpenVINO: the traced
graph converted once per version), but only after it has agreed with TensorFlow on
a fixed probe batch; a version it disagrees on, or cannot convert, is served by
TensorFlow, with the reason shown in `GET /models`. With `auto`, "faster" is measured
too, per version, at load: the candidate must beat TensorFlow on a single image and on
a full micro-batch, or TensorFlow keeps serving (tiny networks can be dominated by a
runtime's per-call cost). Conversion runs at load time in
the inference thread, never on the request path, and its result is cached on disk
keyed by the version's files and the runtime's version.
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

from training.core.preprocessing import INPUT_SHAPE

logger = logging.getLogger(__name__)

Predict = Callable[[np.ndarray], np.ndarray]  # uint8 (N, 32, 32, 3) -> float32 probabilities (N, 10).
PROBE_SIZE = 16  # Images in the parity probe: enough to exercise batching, cheap at load time.


class Backend(StrEnum):
    AUTO = "auto"  # The fastest installed backend that passes its parity check, else TensorFlow.
    TENSORFLOW = "tensorflow"
    OPENVINO = "openvino"


FASTEST_FIRST = (Backend.OPENVINO, Backend.TENSORFLOW)


@dataclass(frozen=True)
class BackendOptions:
    """What the loader needs from the settings, so this module never reads them itself."""

    requested: Backend = Backend.AUTO
    threads: int = 1
    parity_tolerance: float = 1e-4
    cache_dir: Path | None = None
    batch_size: int = 32  # The micro-batcher's largest batch: `auto` compares speed at 1 and at this size.


@dataclass(frozen=True)
class Compiled:
    backend: Backend
    predict: Predict
    refused: dict[str, str] = field(default_factory=dict)  # Backend -> why it does not serve this version.


def installed(backend: Backend) -> bool:
    if backend is Backend.OPENVINO:
        return importlib.util.find_spec("openvino") is not None
    return backend is Backend.TENSORFLOW


def probe_images(count: int = PROBE_SIZE) -> np.ndarray:
    """A fixed batch of smooth, photo-like uint8 images (seeded low-resolution noise, upsampled).

    Pure noise would push the network far outside what it was trained on, where tiny
    numeric differences are amplified; smooth images behave like real inputs.
    """
    rng = np.random.default_rng(20261126)
    coarse = rng.integers(0, 256, (count, 4, 4, 3)).astype(np.float32)
    fine = coarse.repeat(8, axis=1).repeat(8, axis=2) + rng.normal(0, 12, (count, *INPUT_SHAPE))
    return np.clip(fine, 0, 255).astype(np.uint8)


def disagreement(candidate: Predict, reference: Predict, probe: np.ndarray) -> float:
    """The largest absolute difference between two backends' probabilities on the probe batch."""
    return float(np.max(np.abs(candidate(probe) - reference(probe))))


def compile_forward(forward: Any, version_key: str, options: BackendOptions) -> Compiled:
    """The backend that will serve a version: the requested one, or the fastest that passes.

    `forward` is the version's TensorFlow `tf.function` (the reference); `version_key`
    identifies the version's files for the conversion cache.
    """

    def reference(images: np.ndarray) -> np.ndarray:
        return np.asarray(forward(images).numpy())

    wanted = FASTEST_FIRST if options.requested is Backend.AUTO else (options.requested, Backend.TENSORFLOW)
    refused: dict[str, str] = {}
    probe = probe_images()
    for backend in wanted:
        if backend is Backend.TENSORFLOW:
            return Compiled(backend, reference, refused)
        if not installed(backend):
            refused[backend] = f"{backend} is not installed"
            continue
        try:
            candidate = _openvino(forward, version_key, options)
            gap = disagreement(candidate, reference, probe)
        except Exception as error:  # A conversion failure falls back; it never fails the version.
            refused[backend] = f"conversion failed: {type(error).__name__}: {error}"
            continue
        if not gap <= options.parity_tolerance:  # Written so that NaN is refused too.
            refused[backend] = (
                f"disagrees with TensorFlow on the probe batch: max probability difference {gap:.2e} "
                f"> tolerance {options.parity_tolerance:.0e}"
            )
            continue
        if options.requested is Backend.AUTO:
            slower = slower_than(candidate, reference, options.batch_size)
            if slower:
                refused[backend] = f"slower than tensorflow for this version ({slower})"
                continue
        return Compiled(backend, candidate, refused)
    raise AssertionError("TensorFlow is always the last resort")  # pragma: no cover


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


def _openvino(forward: Any, version_key: str, options: BackendOptions) -> Predict:
    """The forward graph in OpenVINO: fp32, one latency-oriented stream (the batcher sends one batch at a time)."""
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(
        _converted(forward, version_key, options.cache_dir, ov),
        "CPU",
        {
            "PERFORMANCE_HINT": "LATENCY",
            # CPUs with bf16 or AMX default to bf16, which moves probabilities by up to ~0.04 here.
            "INFERENCE_PRECISION_HINT": "f32",
            "INFERENCE_NUM_THREADS": options.threads,
        },
    )
    request = compiled.create_infer_request()  # Used only from the single inference thread.

    def predict(images: np.ndarray) -> np.ndarray:
        return np.array(request.infer([np.ascontiguousarray(images, np.uint8)])[0], np.float32)

    return predict


def _converted(forward: Any, version_key: str, cache_dir: Path | None, ov: Any) -> Any:
    """The OpenVINO model for a version, from the cache or converted now (then cached)."""
    key = hashlib.sha256(f"{version_key}|openvino {ov.__version__}".encode()).hexdigest()[:16]
    cached = cache_dir / "openvino" / key / "model.xml" if cache_dir else None
    if cached is not None and cached.is_file():
        try:
            return ov.Core().read_model(cached)
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
