"""Pixel scaling: the one rule training, evaluation and serving share."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from training.core.preprocessing import Scaling, scale_images, scale_tensor


def test_scaling_matches_the_recorded_rule() -> None:
    images = np.array([[[[0, 51, 255]]]], dtype=np.uint8)
    assert np.array_equal(scale_images(images, Scaling.UNIT), np.float32([[[[0.0, 0.2, 1.0]]]]))
    assert scale_images(images, "none").tolist() == [[[[0.0, 51.0, 255.0]]]]


def test_numpy_and_tensorflow_scale_bit_for_bit() -> None:
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    for scaling in Scaling:
        assert np.array_equal(scale_tensor(tf.constant(images), scaling).numpy(), scale_images(images, scaling))
