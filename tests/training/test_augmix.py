"""AugMix-style mixing: seeded, on the share asked for, each operation doing what it says."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tests.utils.images import float_batch, stateless_seed
from training import augmix
from training.augmix import augmix_batch
from training.corruptions import CORRUPTIONS


def test_the_same_seed_mixes_the_same_way_and_another_seed_differently() -> None:
    images = float_batch()
    first = augmix_batch(images, 0.5, stateless_seed(3)).numpy()
    assert np.array_equal(first, augmix_batch(images, 0.5, stateless_seed(3)).numpy())
    assert not np.array_equal(first, augmix_batch(images, 0.5, stateless_seed(4)).numpy())


def test_about_the_requested_share_is_mixed_and_pixels_stay_in_range() -> None:
    images = float_batch(1024)
    for fraction in (0.0, 0.5, 1.0):
        mixed = augmix_batch(images, fraction, stateless_seed(0)).numpy()
        changed = np.abs(mixed - images.numpy()).max(axis=(1, 2, 3)) > 1e-6
        assert abs(changed.mean() - fraction) < 0.06, (fraction, changed.mean())
        assert mixed.min() >= 0.0 and mixed.max() <= 1.0


def test_its_operations_are_none_of_the_benchmarks_corruptions() -> None:
    assert not set(augmix.OPERATIONS) & set(CORRUPTIONS)
    assert not {"contrast", "brightness", "color", "sharpness"} & set(augmix.OPERATIONS)


def test_autocontrast_stretches_each_channel_to_the_full_range() -> None:
    stretched = augmix._autocontrast(float_batch(4)).numpy()
    assert np.allclose(stretched.min(axis=(1, 2)), 0.0) and np.allclose(stretched.max(axis=(1, 2)), 1.0)


def test_equalize_spreads_the_values_evenly() -> None:
    narrow = tf.constant(np.random.default_rng(1).uniform(0.4, 0.5, (2, 32, 32, 3)).astype(np.float32))
    equalized = augmix._equalize(narrow).numpy()
    assert equalized.max() == pytest.approx(1.0)
    assert np.allclose(np.quantile(equalized, [0.25, 0.5, 0.75]), [0.25, 0.5, 0.75], atol=0.05)


def test_posterize_keeps_at_most_sixteen_levels_and_solarize_inverts_only_the_bright() -> None:
    images = float_batch(8)
    posterized = augmix._posterize(images, tf.fill([8], 0.2)).numpy()
    assert len(np.unique(np.round(posterized * 255))) <= 16
    solarized = augmix._solarize(images, tf.ones([8])).numpy()  # Threshold 0.7.
    bright = images.numpy() >= 0.7
    assert np.allclose(solarized[bright], 1.0 - images.numpy()[bright])
    assert np.array_equal(solarized[~bright], images.numpy()[~bright])


@pytest.mark.parametrize("operation", ["rotate", "shear", "translate"])
def test_a_geometric_operation_at_zero_strength_leaves_the_image(operation: str) -> None:
    images = float_batch(4)
    index = tf.fill([4], augmix.OPERATIONS.index(operation))
    same = augmix._geometric(images, index, tf.zeros([4]), tf.constant([False, True, False, True])).numpy()
    moved = augmix._geometric(images, index, tf.ones([4]), tf.constant([False, True, False, True])).numpy()
    assert np.allclose(same, images.numpy(), atol=1e-5)
    assert not np.allclose(moved, images.numpy(), atol=1e-3)


def test_a_whole_pixel_translation_moves_the_image_by_that_pixel() -> None:
    images = float_batch(1)
    shift = 1.0 / augmix.MAX_TRANSLATION_PIXELS  # One pixel along x.
    moved = augmix._geometric(
        images, tf.constant([augmix.OPERATIONS.index("translate")]), tf.constant([shift]), tf.constant([False])
    ).numpy()
    assert np.allclose(moved[0, :, :-1], images.numpy()[0, :, 1:], atol=1e-5)
