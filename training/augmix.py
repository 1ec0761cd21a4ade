"""AugMix-style augmentation (Hendrycks et al., ICLR 2020), batched in TensorFlow.

Each chosen image becomes a mix of itself and three augmentation chains: every chain
applies one to three operations drawn at random, the chains are averaged with
Dirichlet(1, 1, 1) weights, and the result is blended with the original by a
Beta(1, 1) draw. The images stay recognisable but their low-level statistics vary a
lot, which is what makes a network less brittle under corruptions it never saw.

The operations are AugMix's, at its default severity (3 of 10): autocontrast,
equalize, posterize (3 or 4 bits), solarize (threshold above 0.7), rotate (up to 9
degrees), shear (up to 0.09) and translate (up to 3.2 pixels), none of them one of
the benchmark's corruptions (`training.corruptions`): like the paper, it leaves out
contrast, colour, brightness and sharpness, which would overlap with them. So
training with it adds nothing to a report's "seen" corruptions.

Without the paper's Jensen-Shannon consistency loss (three forward passes per image),
which this pipeline does not add. Whole batches at once (every operation computed, one
picked per image); stateless draws keyed by the run seed and the batch's position, as
in `training.augment`. Labels are never touched.
"""

from __future__ import annotations

import math

import tensorflow as tf

CHAINS = 3
MAX_DEPTH = 3
OPERATIONS = ("autocontrast", "equalize", "posterize", "solarize", "rotate", "shear", "translate")
MAX_ROTATION_DEGREES = 9.0
MAX_SHEAR = 0.09
MAX_TRANSLATION_PIXELS = 3.2
MIN_SOLARIZE_THRESHOLD = 1.0 - 0.3  # Pixels above it are inverted.
POSTERIZE_BITS = (3, 4)


def augmix_batch(images: tf.Tensor, fraction: float, seed: tf.Tensor) -> tf.Tensor:
    """Replace about `fraction` of a float batch in [0, 1] (N, H, W, C) by its AugMix mix.

    `seed` is a stateless seed, shape [2] int64; the same seed gives the same batch.
    """
    chosen = tf.where(tf.random.stateless_uniform([tf.shape(images)[0]], seed=seed) < fraction)
    mixes = _mix(tf.gather_nd(images, chosen), seed)
    return tf.ensure_shape(tf.tensor_scatter_nd_update(images, chosen, mixes), images.shape)


def _mix(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Every image of the batch blended with its three chains."""
    count = tf.shape(images)[0]
    weights = _dirichlet(count, CHAINS, seed + 1)
    mixed = tf.zeros_like(images)
    for chain in range(CHAINS):
        chain_seed = seed + 10 * (chain + 1)
        depth = 1 + tf.cast(tf.random.stateless_uniform([count], seed=chain_seed) * MAX_DEPTH, tf.int32)
        augmented = images
        for step in range(MAX_DEPTH):
            changed = _random_operation(augmented, chain_seed + step + 1)
            augmented = tf.where((step < depth)[:, None, None, None], changed, augmented)
        mixed += weights[:, chain, None, None, None] * augmented
    keep = _beta(count, seed + 2)[:, None, None, None]
    return keep * images + (1.0 - keep) * mixed


def _random_operation(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """One operation per image, drawn uniformly from OPERATIONS, at a random strength."""
    count = tf.shape(images)[0]
    draws = tf.random.stateless_uniform([count, 4], seed=seed)
    operation = tf.cast(draws[:, 0] * len(OPERATIONS), tf.int32)
    strength, sign, vertical = draws[:, 1], tf.where(draws[:, 2] < 0.5, -1.0, 1.0), draws[:, 3] < 0.5
    pick = operation[:, None, None, None]
    result = _geometric(images, operation, strength * sign, vertical)  # rotate, shear and translate.
    result = tf.where(pick == 3, _solarize(images, strength), result)
    result = tf.where(pick == 2, _posterize(images, strength), result)
    result = tf.where(pick == 1, _equalize(images), result)
    return tf.where(pick == 0, _autocontrast(images), result)


def _autocontrast(images: tf.Tensor) -> tf.Tensor:
    """Stretch each channel to the full range (a flat channel stays as it is)."""
    low = tf.reduce_min(images, axis=[1, 2], keepdims=True)
    high = tf.reduce_max(images, axis=[1, 2], keepdims=True)
    span = high - low
    return tf.where(span > 0, (images - low) / tf.maximum(span, 1e-6), images)


def _equalize(images: tf.Tensor) -> tf.Tensor:
    """Histogram equalization per channel, on the 8-bit values: each becomes its channel's CDF there."""
    shape = tf.shape(images)
    levels = tf.cast(tf.round(images * 255.0), tf.int32)
    flat = tf.reshape(tf.transpose(levels, [0, 3, 1, 2]), [shape[0] * shape[3], -1])  # (N * C, pixels)
    counts = tf.math.bincount(flat, minlength=256, maxlength=256, axis=-1, dtype=tf.float32)
    cdf = tf.cumsum(counts, axis=-1) / tf.cast(tf.shape(flat)[-1], tf.float32)
    equalized = tf.gather(cdf, flat, batch_dims=1)
    return tf.transpose(tf.reshape(equalized, [shape[0], shape[3], shape[1], shape[2]]), [0, 2, 3, 1])


def _posterize(images: tf.Tensor, strength: tf.Tensor) -> tf.Tensor:
    """Keep the top 3 or 4 bits of each 8-bit value."""
    low, high = POSTERIZE_BITS
    bits = tf.where(strength < 0.5, float(high), float(low))
    step = tf.pow(2.0, 8.0 - bits)[:, None, None, None]
    return tf.floor(tf.round(images * 255.0) / step) * step / 255.0


def _solarize(images: tf.Tensor, strength: tf.Tensor) -> tf.Tensor:
    threshold = (1.0 - strength * (1.0 - MIN_SOLARIZE_THRESHOLD))[:, None, None, None]
    return tf.where(images >= threshold, 1.0 - images, images)


def _geometric(images: tf.Tensor, operation: tf.Tensor, amount: tf.Tensor, vertical: tf.Tensor) -> tf.Tensor:
    """Rotate, shear or translate each image about its centre (amount in [-1, 1]; shear and
    translate along x, or y where `vertical`), black outside."""
    size = tf.cast(tf.shape(images)[1], tf.float32)
    centre = (size - 1.0) / 2.0
    angle = amount * MAX_ROTATION_DEGREES * math.pi / 180.0
    shear = amount * MAX_SHEAR
    shift = amount * MAX_TRANSLATION_PIXELS
    zeros, ones = tf.zeros_like(amount), tf.ones_like(amount)
    rotate = operation == OPERATIONS.index("rotate")
    sheared = operation == OPERATIONS.index("shear")
    shifted = operation == OPERATIONS.index("translate")
    cos = tf.where(rotate, tf.cos(angle), ones)
    sin = tf.where(rotate, tf.sin(angle), zeros)
    shear_x = tf.where(sheared & ~vertical, shear, zeros)
    shear_y = tf.where(sheared & vertical, shear, zeros)
    # Output pixel (x, y) samples input (a0 x + a1 y + a2, b0 x + b1 y + b2): a rotation or a
    # shear about the centre, or a shift.
    a0, a1 = cos, -sin + shear_x
    b0, b1 = sin + shear_y, cos
    a2 = centre - a0 * centre - a1 * centre + tf.where(shifted & ~vertical, shift, zeros)
    b2 = centre - b0 * centre - b1 * centre + tf.where(shifted & vertical, shift, zeros)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def _dirichlet(count: tf.Tensor, parts: int, seed: tf.Tensor) -> tf.Tensor:
    gammas = tf.random.stateless_gamma([count, parts], seed=seed, alpha=1.0)
    return gammas / tf.reduce_sum(gammas, axis=1, keepdims=True)


def _beta(count: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    gammas = tf.random.stateless_gamma([count, 2], seed=seed, alpha=1.0)
    return gammas[:, 0] / tf.reduce_sum(gammas, axis=1)
