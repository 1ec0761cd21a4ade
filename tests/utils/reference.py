"""Independent references the code under test is checked against."""

from __future__ import annotations

from typing import Any

import numpy as np


def numpy_tta(model: Any, inputs: np.ndarray, tta: str) -> np.ndarray:
    """Test-time augmentation written independently of training.core.forward, in NumPy."""

    def mirrored(images: np.ndarray) -> np.ndarray:
        return (model.predict(images, verbose=0) + model.predict(images[:, :, ::-1], verbose=0)) / 2

    if tta == "none":
        return np.asarray(model.predict(inputs, verbose=0))
    if tta == "hflip":
        return mirrored(inputs)
    if tta != "hflip_translate":
        raise ValueError(f"no reference for {tta!r}")
    padded = np.pad(inputs, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    shifted = (mirrored(padded[:, :32, :32]) + mirrored(padded[:, 2:, 2:])) / 2
    return (mirrored(inputs) + shifted) / 2
