"""The compiled forward pass: uint8 images in, class probabilities out.

Training evaluates the test set through `make_forward`, and the service answers
requests through it too, so the accuracy stored in metrics.json is the accuracy of
exactly the procedure the service runs (scaling and test-time augmentation included).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from training.preprocessing import INPUT_SHAPE, Scaling

Forward = Callable[[tf.Tensor], tf.Tensor]
TTA_MODES = ("none", "hflip")


def scale_tensor(images: tf.Tensor, scaling: Scaling | str) -> tf.Tensor:
    """The TensorFlow twin of `preprocessing.scale_images`, used in tf.data and in serving."""
    return tf.cast(images, tf.float32) / Scaling(scaling).divisor


def make_forward(model: keras.Model, scaling: Scaling | str, tta: str = "none") -> Forward:
    """A `tf.function` with a fixed signature, traced once: no per-call Python overhead.

    `model.predict()` builds a dataset and a progress loop on every call, which costs
    tens of milliseconds; calling the traced graph directly costs well under one.
    """
    if tta not in TTA_MODES:
        raise ValueError(f"unknown test-time augmentation {tta!r}; known: {TTA_MODES}")

    @tf.function(input_signature=[tf.TensorSpec((None, *INPUT_SHAPE), tf.uint8)], reduce_retracing=True)
    def forward(images: tf.Tensor) -> tf.Tensor:
        inputs = scale_tensor(images, scaling)
        probabilities = model(inputs, training=False)
        if tta == "hflip":
            mirrored = model(tf.reverse(inputs, axis=[2]), training=False)
            probabilities = (probabilities + mirrored) / 2.0
        return probabilities

    return forward


def predict_in_batches(forward: Forward, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Run `forward` over a large uint8 array without holding every activation at once."""
    outputs = [
        forward(tf.constant(images[start : start + batch_size])).numpy() for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(outputs) if outputs else np.zeros((0, 10), dtype=np.float32)
