"""Turning a stored version into something that answers: the registry's real loader.

Runs in the inference thread: reads and validates the artifact through the store
format, loads the Keras model, compiles the shared forward pass (scaling and TTA
inside the graph), hands it to the backend that will serve it (app/backends.py) and
warms that up, so the first request never pays for tracing or conversion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from app.backends import Backend, BackendOptions, Int8Model, Predict, compile_forward
from training.core import artifacts
from training.core.classes import NUM_CLASSES
from training.core.preprocessing import INPUT_SHAPE


@dataclass(frozen=True)
class Servable:
    """A loaded version: its validated files and its forward pass."""

    artifact: artifacts.Artifact
    predict: Predict
    backend: Backend = Backend.TENSORFLOW
    refused: dict[str, str] = field(default_factory=dict)  # Faster backends that did not pass, and why.


Loader = Callable[[Path], Servable]


def make_loader(options: BackendOptions) -> Loader:
    return partial(load_servable, options=options)


TENSORFLOW_ONLY = BackendOptions(Backend.TENSORFLOW)


def load_servable(folder: Path, options: BackendOptions = TENSORFLOW_ONLY) -> Servable:
    """The production loader: TensorFlow is imported here, on first use, never at app import."""
    from training.core.forward import make_forward

    artifact = artifacts.load_artifact(folder)
    model = artifacts.load_keras_model(folder)
    metadata = artifact.metadata
    forward = make_forward(
        model, metadata.scaling, metadata.test_time_augmentation, metadata.temperature, metadata.tta_average
    )
    int8 = None
    if metadata.quantization is not None:
        int8 = Int8Model(folder / artifacts.INT8_DIR / artifacts.INT8_MODEL_FILE, metadata.quantization)
    compiled = compile_forward(forward, artifacts.content_digest(folder), options, int8)
    warm_up = compiled.predict(np.zeros((1, *INPUT_SHAPE), np.uint8))  # Before traffic arrives.
    if warm_up.shape != (1, NUM_CLASSES):
        raise artifacts.InvalidArtifact(f"the model outputs {warm_up.shape[1:]} values for {NUM_CLASSES} classes")
    return Servable(artifact, compiled.predict, compiled.backend, compiled.refused)
