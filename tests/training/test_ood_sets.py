"""The out-of-distribution image kinds: seeded, CIFAR-shaped, and what their names say."""

from __future__ import annotations

import numpy as np
import pytest

from training import ood_sets

IMAGES = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
LABELS = np.arange(40) % 10


@pytest.mark.parametrize("kind", sorted(ood_sets.KINDS))
def test_each_kind_is_seeded_and_cifar_shaped(kind: str) -> None:
    first = ood_sets.make(kind, 12, 7, IMAGES, LABELS)
    assert first.shape == (12, 32, 32, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, ood_sets.make(kind, 12, 7, IMAGES, LABELS))
    assert not np.array_equal(first, ood_sets.make(kind, 12, 8, IMAGES, LABELS))
    assert len({image.tobytes() for image in first}) == 12, "no two images alike"


def test_tiles_keep_each_images_pixels_and_move_them() -> None:
    shuffled = ood_sets.make("tiles", 40, 1, IMAGES, LABELS)
    sources = {tuple(np.sort(image.ravel())): image for image in IMAGES}
    moved = 0
    for image in shuffled:
        source = sources[tuple(np.sort(image.ravel()))]  # The same pixel values, rearranged.
        moved += not np.array_equal(image, source)
    assert moved == 40


def test_blends_mix_two_images_of_different_classes() -> None:
    rng = np.random.default_rng(3)
    blended = ood_sets.blends(20, rng, IMAGES, LABELS)
    rng = np.random.default_rng(3)
    first, second = rng.choice(40, 20), rng.choice(40, 20)
    clash = LABELS[first] == LABELS[second]
    assert blended.shape == (20, 32, 32, 3)
    # Wherever the first draw had no clash, the pixels are the rounded mean of the two images.
    for index in np.flatnonzero(~clash):
        expected = np.round((IMAGES[first[index]].astype(np.float32) + IMAGES[second[index]]) / 2)
        np.testing.assert_array_equal(blended[index], expected.astype(np.uint8))


def test_text_is_ink_on_a_plain_ground() -> None:
    rendered = ood_sets.make("text", 20, 0, IMAGES, LABELS).astype(np.int16)
    # Each image has a dominant ground colour and some pixels far from it (the glyphs).
    spread = rendered.reshape(20, -1, 3).max(axis=1) - rendered.reshape(20, -1, 3).min(axis=1)
    assert (spread.max(axis=1) > 60).mean() >= 0.9
