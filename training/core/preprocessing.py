"""Pixels in, network input out: the one place that says how uint8 images are scaled.

Training batches (tf.data), the stored test accuracy and the service's forward pass
all scale through `Scaling`, so there is no train/serve skew to drift apart. Turning
an upload into pixels is the service's business (`app/decoding.py`).
"""

from __future__ import annotations

import io
from enum import StrEnum
from typing import Any

import numpy as np
from PIL import Image

INPUT_SHAPE = (32, 32, 3)
PROBE_SIZE = 16  # Images in the parity probe: enough to exercise batching, cheap at load time.


class Scaling(StrEnum):
    """How uint8 pixels become the network's float input (recorded in metadata.json)."""

    UNIT = "divide_by_255"  # The tutorial's x / 255 into [0, 1].
    NONE = "none"  # Raw 0..255 floats; the network normalises inside itself.

    @property
    def divisor(self) -> float:
        """Pixels are divided by this; NumPy and TensorFlow both divide, so results match bit for bit."""
        return 255.0 if self is Scaling.UNIT else 1.0


class TestTimeAugmentation(StrEnum):
    """Which views of an image the served graph averages (recorded in metadata.json)."""

    __test__ = False  # Not a pytest test class, despite the name.

    NONE = "none"
    HFLIP = "hflip"  # The image and its mirror, averaged.
    # airbench's six views: the mirror pair at the original position (weight 1/2) and shifted
    # one pixel up-left and down-right with reflected borders (1/4 each).
    HFLIP_TRANSLATE = "hflip_translate"
    # Four of those six: the mirror pair at the original position (1/3 each) and shifted one
    # pixel up-left (1/6 each). Two thirds of the cost; bench/tta_views.py measures what it keeps.
    HFLIP_SHIFT = "hflip_shift"
    # The first three of those four: the mirror pair (2/5 each) and the image shifted one pixel
    # up-left (1/5), without its mirror. Three quarters of hflip_shift's cost; a mirrored upload
    # can then get a slightly different answer from the original.
    HFLIP_PLUS_SHIFT = "hflip_plus_shift"


class TtaAverage(StrEnum):
    """What the served graph averages over the TTA views (recorded in metadata.json)."""

    PROBABILITIES = "probabilities"  # Each view's softmax, then the weighted mean (format-1 versions).
    LOGITS = "logits"  # The weighted mean of the views' logits, then one softmax (airbench's way).


def scale_images(images: np.ndarray, scaling: Scaling | str) -> np.ndarray:
    """uint8 (N, 32, 32, 3) to the float32 the network expects (NumPy)."""
    return images.astype(np.float32) / np.float32(Scaling(scaling).divisor)


def scale_tensor(images: Any, scaling: Scaling | str) -> Any:
    """The TensorFlow twin of `scale_images`, used in tf.data and in the served graph."""
    import tensorflow as tf  # Lazily: the NumPy half of this module serves TensorFlow-free callers.

    return tf.cast(images, tf.float32) / Scaling(scaling).divisor


def encode_png(pixels: np.ndarray) -> bytes:
    """uint8 HWC array to PNG bytes (sample images, tests and benchmarks)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def probe_images(count: int = PROBE_SIZE) -> np.ndarray:
    """A fixed batch of smooth, photo-like uint8 images (seeded low-resolution noise, upsampled).

    Backends are checked on it at load time (app/backends.py) and an int8 model records
    its answers to it when quantized (training/quantize.py), so both must draw the same
    batch. Pure noise would push the network far outside what it was trained on, where
    tiny numeric differences are amplified; smooth images behave like real inputs.
    """
    rng = np.random.default_rng(20261126)
    coarse = rng.integers(0, 256, (count, 4, 4, 3)).astype(np.float32)
    fine = coarse.repeat(8, axis=1).repeat(8, axis=2) + rng.normal(0, 12, (count, *INPUT_SHAPE))
    return np.clip(fine, 0, 255).astype(np.uint8)
