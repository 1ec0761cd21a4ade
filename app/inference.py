"""Turning a stored version into something that answers: the registry's real loader.

Runs in the inference thread: reads and validates the artifact through the store
format, loads the Keras model, compiles the shared forward pass (scaling and TTA
inside the graph) and warms it up, so the first request never pays for tracing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.core import artifacts
from training.core.classes import NUM_CLASSES
from training.core.preprocessing import INPUT_SHAPE

Predict = Callable[[np.ndarray], np.ndarray]  # uint8 (N, 32, 32, 3) -> float32 probabilities (N, 10).


@dataclass(frozen=True)
class Servable:
    """A loaded version: its validated files and its forward pass."""

    artifact: artifacts.Artifact
    predict: Predict


Loader = Callable[[Path], Servable]


def load_servable(folder: Path) -> Servable:
    """The production loader: TensorFlow is imported here, on first use, never at app import."""
    from training.core.forward import make_forward

    artifact = artifacts.load_artifact(folder)
    model = artifacts.load_keras_model(folder)
    metadata = artifact.metadata
    forward = make_forward(
        model, metadata.scaling, metadata.test_time_augmentation, metadata.temperature, metadata.tta_average
    )

    def predict(images: np.ndarray) -> np.ndarray:
        return np.asarray(forward(images).numpy())

    warm_up = predict(np.zeros((1, *INPUT_SHAPE), np.uint8))  # Traces the graph before traffic arrives.
    if warm_up.shape != (1, NUM_CLASSES):
        raise artifacts.InvalidArtifact(f"the model outputs {warm_up.shape[1:]} values for {NUM_CLASSES} classes")
    return Servable(artifact, predict)
