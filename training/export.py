"""Compiled copies of a version's served procedure, written when it is published.

- A TensorFlow SavedModel that TF Serving, KServe or Triton load as is. The
  `serving_default` signature is the served procedure itself (the core's forward pass:
  uint8 images in; scaling, test-time augmentation and temperature inside), so any
  TensorFlow server answers exactly what this service answers. It sits in the version
  folder, TF Serving's layout (`<name>/<version>/saved_model.pb` + `variables/`);
  `saved_model.pb` is moved in last, so a server polling the folder never loads half an
  export.
- OpenVINO IR of the same procedure (`openvino/`, fp32), held to TensorFlow on the probe
  batch here, where TensorFlow is at hand, with TensorFlow's answers and both runtimes'
  latency recorded beside it (`records.CompiledIR`). The service serves it without
  importing TensorFlow, checking it against those answers at load (app/backends.py).

`python -m training export` adds whichever is missing to versions published before.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from training.core import artifacts, openvino_runtime, records
from training.core.classes import NUM_CLASSES
from training.core.forward import Forward, forward_for
from training.core.novelty import NoveltyStatistics
from training.core.preprocessing import INPUT_SHAPE, probe_images
from training.core.staging import publish, staged_dir, staging_name

SIGNATURE = "serving_default"
INPUT_NAME = "images"
PARITY_TOLERANCE = 1e-4  # Largest probability difference the IR may show from TensorFlow on the probe batch.
TIMED_BATCHES = (1, 16, 32)  # Batch sizes whose latency is recorded (the micro-batcher's largest: 16 and 32).


def write_exports(
    model: Any, metadata: records.Metadata, folder: Path, novelty: NoveltyStatistics | None = None
) -> None:
    """Every compiled copy of the version into `folder` (a version or its staging folder); with the
    version's novelty statistics, each answers the score too."""
    write_saved_model(model, metadata, folder, novelty)
    write_ir(model, metadata, folder, novelty)


def write_saved_model(
    model: Any, metadata: records.Metadata, folder: Path, novelty: NoveltyStatistics | None = None
) -> None:
    """Export `model` as `metadata` says it is served, into `folder` (a version or its staging folder)."""
    forward = forward_for(model, metadata, novelty)
    module = tf.Module()
    module.model = model  # Tracked, so that its variables are saved.

    @tf.function(input_signature=[tf.TensorSpec((None, *INPUT_SHAPE), tf.uint8, name=INPUT_NAME)], autograph=False)
    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        rows = forward(images)
        probabilities = rows[:, :NUM_CLASSES]
        outputs = {"probabilities": probabilities, "class_index": tf.argmax(probabilities, axis=1)}
        if novelty is not None:
            outputs["ood_score"] = rows[:, NUM_CLASSES]
        return outputs

    module.serve = serve
    staging = staging_name(folder / "saved_model")
    try:
        tf.saved_model.save(module, str(staging), signatures={SIGNATURE: serve})
        for entry in sorted(staging.iterdir(), key=lambda path: path.name == artifacts.SAVED_MODEL_FILE):
            target = folder / entry.name
            if target.is_dir():
                shutil.rmtree(target)
            publish(entry, target)  # saved_model.pb last: its arrival marks a complete export.
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_ir(
    model: Any, metadata: records.Metadata, folder: Path, novelty: NoveltyStatistics | None = None
) -> records.CompiledIR | None:
    """Convert the served procedure to OpenVINO IR and write it with its record, if it agrees with
    TensorFlow; returns the record, or None (and says why on stderr) when it cannot be used: the
    version then serves on TensorFlow, as before."""
    forward = forward_for(model, metadata, novelty)
    try:
        converted = openvino_runtime.convert(forward)
        predict = openvino_runtime.compile_for_cpu(converted)
    except Exception as error:  # No IR is a slower version, never a failed publish.
        print(f"warning: no OpenVINO IR: conversion failed: {type(error).__name__}: {error}", file=sys.stderr)
        return None
    probe = probe_images()
    expected = forward(probe).numpy()
    difference = float(np.max(np.abs(predict(probe) - expected)))
    if not difference <= PARITY_TOLERANCE:  # Written so that NaN is refused too.
        print(f"warning: no OpenVINO IR: it differs from TensorFlow by {difference:.2e}", file=sys.stderr)
        return None
    record = records.CompiledIR(
        runtime=openvino_runtime.runtime_version(),
        max_difference=difference,
        tolerance=PARITY_TOLERANCE,
        probe_probabilities=expected.tolist(),
        milliseconds={str(size): _latencies(predict, forward, size) for size in TIMED_BATCHES},
    )
    with staged_dir(folder / artifacts.IR_DIR) as staging:
        openvino_runtime.save_model(converted, staging / artifacts.IR_MODEL_FILE)
        artifacts.write_record(staging, artifacts.IR_RECORD_FILE, record)
    return record


def _latencies(predict: Callable[[np.ndarray], np.ndarray], forward: Forward, size: int) -> dict[str, float]:
    images = np.resize(probe_images(), (size, *INPUT_SHAPE))
    return {
        "openvino": _median_ms(predict, images),
        "tensorflow": _median_ms(lambda batch: forward(batch).numpy(), images),
    }


def _median_ms(predict: Callable[[np.ndarray], Any], images: np.ndarray, repeats: int = 7) -> float:
    predict(images)  # Warm-up: first calls allocate.
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(images)
        timings.append(time.perf_counter() - start)
    return 1000 * statistics.median(timings)


FORMATS = ("saved_model", "ir")


def export_version(folder: Path, formats: tuple[str, ...] = FORMATS) -> list[str]:
    """Add whichever of the compiled copies in `formats` an existing version lacks; returns what was added."""
    artifact = artifacts.load_artifact(folder)
    novelty = artifacts.load_novelty_statistics(folder, artifact.metadata)
    model, added = None, []
    if "saved_model" in formats and not (folder / artifacts.SAVED_MODEL_FILE).is_file():
        model = artifacts.load_keras_model(folder)
        write_saved_model(model, artifact.metadata, folder, novelty)
        added.append("SavedModel")
    if "ir" in formats and artifacts.load_ir_record(folder) is None:
        model = model or artifacts.load_keras_model(folder)
        if write_ir(model, artifact.metadata, folder, novelty) is not None:
            added.append("OpenVINO IR")
    return added
