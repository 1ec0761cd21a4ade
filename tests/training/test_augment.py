"""Everyday-photo damage in training: seeded, on the share asked for, labels left alone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.utils.images import float_batch, stateless_seed
from training.architectures import get_architecture
from training.augment import KINDS, corrupt_batch, seen_corruptions
from training.pipeline import training_batches


def test_the_same_seed_damages_the_same_way_and_another_seed_differently() -> None:
    images = float_batch()
    first = corrupt_batch(images, 0.5, stateless_seed(3)).numpy()
    assert np.array_equal(first, corrupt_batch(images, 0.5, stateless_seed(3)).numpy())
    assert not np.array_equal(first, corrupt_batch(images, 0.5, stateless_seed(4)).numpy())


def test_about_the_requested_share_is_damaged_and_pixels_stay_in_range() -> None:
    images = float_batch(1024)
    for fraction in (0.0, 0.5, 1.0):
        damaged = corrupt_batch(images, fraction, stateless_seed(0)).numpy()
        changed = np.abs(damaged - images.numpy()).max(axis=(1, 2, 3)) > 0
        assert abs(changed.mean() - fraction) < 0.06, (fraction, changed.mean())
        assert damaged.min() >= 0.0 and damaged.max() <= 1.0


@pytest.mark.parametrize("share", ["corruption_fraction", "augmix_fraction"])
def test_the_pipeline_keeps_every_label_with_its_image(share: str) -> None:
    count = 64
    images = np.zeros((count, 32, 32, 3), np.uint8)
    images[..., 1] = np.arange(count)[:, None, None]  # Each image carries its number, in green.
    labels = np.arange(count) % 10
    base = replace(get_architecture("whitened_convnet").recipe, batch_size=16, jpeg_fraction=0.0, corruption_fraction=0)
    plain = training_batches(images, labels, base, seed=0)
    damaged = training_batches(images, labels, replace(base, **{share: 1.0}), seed=0)
    steps = 2 * plain.steps_per_epoch
    for (x_plain, y_plain), (x_damaged, y_damaged) in zip(
        plain.batches.take(steps), damaged.batches.take(steps), strict=True
    ):
        assert np.array_equal(y_plain.numpy(), y_damaged.numpy())
        assert not np.array_equal(x_plain.numpy(), x_damaged.numpy())
        numbers = np.round(x_plain.numpy()[..., 1].mean(axis=(1, 2)) * 255).astype(int)
        assert np.array_equal(y_plain.numpy().argmax(axis=1), numbers % 10)


def test_reports_name_the_corruptions_a_recipe_trained_on() -> None:
    assert seen_corruptions({"corruption_fraction": 0.0, "jpeg_fraction": 0.0}) == frozenset()
    assert seen_corruptions({"jpeg_fraction": 0.5}) == {"jpeg_compression"}
    assert seen_corruptions({"corruption_fraction": 0.5, "jpeg_fraction": 0.5}) == {*KINDS, "jpeg_compression"}
    assert seen_corruptions({"augmix_fraction": 1.0}) == frozenset()  # Its operations are none of them.
