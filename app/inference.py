"""Turning a stored version into something that answers: the registry's real loader.

Runs in the inference thread: reads and validates the artifact through the store
format, hands what the version offers each runtime to the backend chooser
(app/backends.py) and warms the winner up, so the first request never pays for
compilation. A version with OpenVINO IR (compiled when it was published) serves without
TensorFlow: TensorFlow is imported, and its threads configured, only for a version
that must fall back to it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from app.backends import Backend, BackendOptions, Int8Model, IRModel, Predict, VersionRuntimes, compile_version
from training.core import artifacts, records
from training.core.classes import NUM_CLASSES
from training.core.novelty import threshold
from training.core.preprocessing import INPUT_SHAPE

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Novelty:
    """Whether a loaded version answers the novelty score, and where its threshold lies."""

    threshold: float | None = None  # Scores above it answer in_distribution = false.
    quantile: float | None = None  # Share of the hold-out images the threshold keeps.
    reason: str | None = None  # Why there is no score, when there is none.


NO_STATISTICS = Novelty(reason="this version has no novelty statistics (python -m training novelty adds them)")


@dataclass(frozen=True)
class Servable:
    """A loaded version: its validated files and its forward pass, whose rows are the ten probabilities,
    then the novelty score when the version has one (`training.core.novelty.split_rows`)."""

    artifact: artifacts.Artifact
    predict: Predict
    backend: Backend = Backend.TENSORFLOW
    refused: dict[str, str] = field(default_factory=dict)  # Faster backends that did not pass, and why.
    novelty: Novelty = NO_STATISTICS


Loader = Callable[[Path], Servable]


def make_loader(options: BackendOptions) -> Loader:
    return partial(load_servable, options=options)


def load_servable(folder: Path, options: BackendOptions) -> Servable:
    """The production loader."""
    artifact = artifacts.load_artifact(folder)
    metadata = artifact.metadata
    ir = artifacts.load_ir_record(folder)
    runtimes = VersionRuntimes(
        tensorflow=partial(_tensorflow_forward, folder, metadata, options.threads),
        ir=IRModel(folder / artifacts.IR_DIR / artifacts.IR_MODEL_FILE, ir) if ir else None,
        int8=Int8Model(folder / artifacts.INT8_DIR / artifacts.INT8_MODEL_FILE, metadata.quantization)
        if metadata.quantization
        else None,
    )
    compiled = compile_version(runtimes, options)
    warm_up = compiled.predict(np.zeros((1, *INPUT_SHAPE), np.uint8))  # Before traffic arrives.
    width = NUM_CLASSES + (metadata.novelty is not None)
    if warm_up.shape != (1, width):
        raise records.InvalidArtifact(f"the model answers {warm_up.shape[1:]} values per image; expected {width}")
    novelty = novelty_threshold(metadata, compiled.backend, options.novelty_quantile)
    return Servable(artifact, compiled.predict, compiled.backend, compiled.refused, novelty)


def novelty_threshold(metadata: records.Metadata, backend: Backend, quantile: float) -> Novelty:
    """The threshold at `quantile` of the hold-out scores of the graph that serves: int8's own, or
    TensorFlow's (which the fp32 IR reproduces)."""
    if metadata.novelty is None:
        return NO_STATISTICS
    scores = metadata.novelty.holdout_scores
    if backend is Backend.OPENVINO_INT8 and metadata.quantization and metadata.quantization.novelty_holdout_scores:
        scores = metadata.quantization.novelty_holdout_scores
    return Novelty(threshold=threshold(scores, quantile), quantile=quantile)


def _tensorflow_forward(folder: Path, metadata: records.Metadata, threads: int) -> Predict:
    """The version's forward pass on TensorFlow (the reference), imported here on first use only."""
    try:
        configure_tensorflow(threads)
        from training.core.forward import forward_for
    except ImportError as error:  # The serving image: OpenVINO only.
        raise records.InvalidArtifact(
            f"no OpenVINO IR serves this version and TensorFlow is not installed ({error.name}); "
            "`python -m training export NAME` adds the IR"
        ) from error

    novelty = artifacts.load_novelty_statistics(folder, metadata)
    forward = forward_for(artifacts.load_keras_model(folder), metadata, novelty)
    return lambda images: np.asarray(forward(images).numpy())


def configure_tensorflow(threads: int) -> None:
    """Match TensorFlow's thread pools to the CPUs this worker may use; only possible before TF starts."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)  # One batch runs at a time anyway.
    except RuntimeError:
        logger.debug("TensorFlow was already initialised; keeping its thread settings")
