"""Independent references the code under test is checked against."""

from __future__ import annotations

from typing import Any

import numpy as np


def outputs(model: Any, images: np.ndarray) -> np.ndarray:
    """The model called directly, in float64: the Keras layers alone, none of the code under test, and
    none of `predict`'s per-call machinery, which outweighs a handful of images by far."""
    return np.asarray(model(images, training=False), np.float64)


def numpy_tta(model: Any, inputs: np.ndarray, tta: str) -> np.ndarray:
    """Test-time augmentation written independently of training.core.forward, in NumPy."""

    def mirrored(images: np.ndarray) -> np.ndarray:
        return (outputs(model, images) + outputs(model, images[:, :, ::-1])) / 2

    if tta == "none":
        return outputs(model, inputs)
    if tta == "hflip":
        return mirrored(inputs)
    padded = np.pad(inputs, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    if tta == "hflip_shift":
        return (2 * mirrored(inputs) + mirrored(padded[:, :32, :32])) / 3
    if tta == "hflip_plus_shift":
        return (4 * mirrored(inputs) + outputs(model, padded[:, :32, :32])) / 5
    if tta != "hflip_translate":
        raise ValueError(f"no reference for {tta!r}")
    shifted = (mirrored(padded[:, :32, :32]) + mirrored(padded[:, 2:, 2:])) / 2
    return (mirrored(inputs) + shifted) / 2


def numpy_calibrated_tta(
    logits_model: Any, inputs: np.ndarray, tta: str, temperature: float, average: str
) -> np.ndarray:
    """Temperature, then TTA, in NumPy: each view's logits / T, combined as `average` says."""

    def softmax(logits: np.ndarray) -> np.ndarray:
        exponentials = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return np.asarray(exponentials / exponentials.sum(axis=-1, keepdims=True))

    views: list[tuple[float, np.ndarray]] = [(1.0, inputs)]
    if tta in ("hflip", "hflip_translate", "hflip_shift", "hflip_plus_shift"):
        views = [(0.5, inputs), (0.5, inputs[:, :, ::-1])]
    if tta == "hflip_shift":
        shift = np.pad(inputs, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")[:, :32, :32]
        views = [(1 / 3, inputs), (1 / 3, inputs[:, :, ::-1]), (1 / 6, shift), (1 / 6, shift[:, :, ::-1])]
    if tta == "hflip_plus_shift":
        shift = np.pad(inputs, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")[:, :32, :32]
        views = [(0.4, inputs), (0.4, inputs[:, :, ::-1]), (0.2, shift)]
    if tta == "hflip_translate":
        padded = np.pad(inputs, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
        shifted = [padded[:, :32, :32], padded[:, 2:, 2:]]
        views = [(0.25, inputs), (0.25, inputs[:, :, ::-1])]
        views += [(0.125, image) for view in shifted for image in (view, view[:, :, ::-1])]
    logits = [(weight, outputs(logits_model, view)) for weight, view in views]
    if average == "logits":
        return softmax(sum(weight * values for weight, values in logits) / temperature)
    return np.asarray(sum(weight * softmax(values / temperature) for weight, values in logits))
