"""The test set as users send it: re-encoded as JPEG, or shrunk and enlarged again.

Each condition re-encodes the 10,000 test images with Pillow and decodes them the
way the service decodes a 32x32 upload (no crop, no resize), so the accuracy
reported for a condition is what a user sending such files gets.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import partial

import numpy as np
from PIL import Image

JPEG_QUALITIES = (95, 75, 50)
DOWNSCALE_SIDE = 16  # A thumbnail-sized source, upscaled back to 32x32 with Lanczos as the service resizes.


def jpeg(images: np.ndarray, quality: int) -> np.ndarray:
    """Each image encoded as a JPEG at `quality` (Pillow's defaults: 4:2:0 subsampling) and decoded."""
    return np.stack([_round_trip(image, quality) for image in images]) if len(images) else images.copy()


def _round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def downscaled(images: np.ndarray, side: int = DOWNSCALE_SIDE) -> np.ndarray:
    """Shrunk to side x side and enlarged back, both with Lanczos."""
    height, width = images.shape[1:3]

    def resample(image: np.ndarray) -> np.ndarray:
        small = Image.fromarray(image).resize((side, side), Image.Resampling.LANCZOS)
        return np.asarray(small.resize((width, height), Image.Resampling.LANCZOS))

    return np.stack([resample(image) for image in images])


def conditions() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Condition name -> how to turn the lossless test images into that condition's images (the
    lossless accuracy itself is the evaluation's own)."""
    found: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    for quality in JPEG_QUALITIES:
        found[f"jpeg_q{quality}"] = partial(jpeg, quality=quality)
    found[f"downscale_{DOWNSCALE_SIDE}px"] = downscaled
    return found


def accuracy_under_conditions(
    predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, labels: np.ndarray
) -> dict[str, float]:
    """Served accuracy per condition; `predict` maps uint8 images to probabilities."""
    return {
        name: float((predict(transform(images)).argmax(axis=1) == labels).mean())
        for name, transform in conditions().items()
    }
