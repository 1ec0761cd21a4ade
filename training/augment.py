"""Everyday-photo damage as a training augmentation: noise, blur and lost contrast, in TensorFlow.

Phones in low light add grain, cheap lenses and shaky hands blur, haze and backlight
flatten contrast. A network that never saw these answers such photos badly and with
too much confidence (`training.corruptions` measures it). Here each training image,
with probability `Recipe.corruption_fraction`, gets one of these kinds of damage at a
random strength:

- `gaussian_noise`: additive noise, sigma up to 0.10 of the pixel range;
- `gaussian_blur`: a 5x5 Gaussian blur blended with the image, sigma up to 1;
- `contrast`: pulled towards the image mean by a factor down to 0.15.

Only these three kinds of the benchmark's corruptions (and JPEG, through the
pipeline's own re-encoding) are seen in training; every other corruption of the
benchmark stays unseen, and reports keep the two groups apart (`seen_corruptions`).

The whole batch is damaged at once (every kind computed, one picked per image), so the
cost is a few element-wise passes over the batch. Draws are stateless, keyed by the run
seed and the batch's position in the stream: a resumed or repeated run sees the same
damage. Labels are never touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

KINDS = ("gaussian_noise", "gaussian_blur", "contrast")
MAX_NOISE_SIGMA = 0.10  # CIFAR-10-C's Gaussian noise at severity 5.
BLUR_SIGMA = 1.0  # CIFAR-10-C's Gaussian blur at severity 5; weaker blurs are blends with the image.
MIN_CONTRAST = 0.15  # CIFAR-10-C's contrast at severity 5.


def seen_corruptions(recipe: Mapping[str, Any]) -> frozenset[str]:
    """The benchmark's corruptions a recipe (as metrics.json records it) trains on."""
    seen = set(KINDS) if recipe.get("corruption_fraction", 0) > 0 else set()
    if recipe.get("jpeg_fraction", 0) > 0:
        seen.add("jpeg_compression")
    return frozenset(seen)


def corrupt_batch(images: tf.Tensor, fraction: float, seed: tf.Tensor) -> tf.Tensor:
    """Damage about `fraction` of a float batch in [0, 1] (N, H, W, C); the rest pass unchanged.

    `seed` is a stateless seed, shape [2] int64; the same seed gives the same batch.
    """
    count = tf.shape(images)[0]
    draws = tf.random.stateless_uniform([count, 3], seed=seed)
    damaged = draws[:, 0] < fraction
    kind = tf.cast(draws[:, 1] * len(KINDS), tf.int32)
    strength = draws[:, 2][:, None, None, None]

    noise = tf.random.stateless_normal(tf.shape(images), seed=seed + 1) * (MAX_NOISE_SIGMA * strength)
    candidates = tf.stack(
        [
            images + noise,
            images + strength * (_blurred(images) - images),
            _contrast(images, 1.0 - strength * (1.0 - MIN_CONTRAST)),
        ]
    )
    picked = tf.gather_nd(tf.transpose(candidates, [1, 0, 2, 3, 4]), kind[:, None], batch_dims=1)
    result = tf.where(damaged[:, None, None, None], tf.clip_by_value(picked, 0.0, 1.0), images)
    return tf.ensure_shape(result, images.shape)


def _contrast(images: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    means = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
    return (images - means) * factor + means


def _blurred(images: tf.Tensor) -> tf.Tensor:
    """A separable 5x5 Gaussian blur with reflected borders, per channel."""
    taps = np.exp(-(np.arange(-2, 3) ** 2) / (2 * BLUR_SIGMA**2))
    taps = (taps / taps.sum()).astype(np.float32)
    channels = images.shape[-1]
    rows = tf.constant(np.tile(taps[:, None, None, None], (1, 1, channels, 1)))
    columns = tf.constant(np.tile(taps[None, :, None, None], (1, 1, channels, 1)))
    padded = tf.pad(images, [[0, 0], [2, 2], [2, 2], [0, 0]], mode="REFLECT")
    blurred = tf.nn.depthwise_conv2d(padded, rows, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(blurred, columns, [1, 1, 1, 1], "VALID")


def damaged_copy(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """Every uint8 image (N, H, W, C) damaged once, as in training, back as uint8: a shifted copy
    of a hold-out to fit a temperature on (`python -m training calibrate --fit-on-damaged`)."""
    damaged = corrupt_batch(tf.constant(images, tf.float32) / 255.0, 1.0, tf.constant([seed, 0], tf.int64))
    return np.asarray(np.round(damaged.numpy() * 255.0), np.uint8)
