"""The corruption benchmark: CIFAR-10-C's kinds of damage, reproducible and graded by severity."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image

from training import corruptions
from training.corruptions import CORRUPTIONS, SEVERITIES, corrupt

# Published constants that do not grade pixel damage monotonically, and why:
NOT_MONOTONE = {
    "glass_blur": "severities 1-3 differ only in a light blur, 4-5 shuffle twice",
    "spatter": "severities 1-3 are water drops, 4-5 mud: a different kind of damage",
    "saturate": "severities 1-2 desaturate, 3-5 oversaturate",
    "elastic_transform": "severity 1 is a large affine warp, higher ones trade it for local distortion",
    "pixelate": "box resampling to 30, 28, 27 px aliases differently at each size",
}


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """Smooth, photo-like images with a little grain: what the benchmark damages."""
    rng = np.random.default_rng(1)
    coarse = rng.integers(0, 256, (24, 5, 5, 3)).astype(np.uint8)
    smooth = np.stack([np.asarray(Image.fromarray(c).resize((32, 32), Image.Resampling.BICUBIC)) for c in coarse])
    return np.clip(smooth.astype(int) + rng.integers(-10, 10, smooth.shape), 0, 255).astype(np.uint8)


def _damage(images: np.ndarray, damaged: np.ndarray) -> float:
    return float(np.abs(damaged.astype(np.float64) - images).mean())


def test_eighteen_kinds_at_five_severities() -> None:
    assert len(CORRUPTIONS) == 18 and "frost" not in CORRUPTIONS
    assert SEVERITIES == (1, 2, 3, 4, 5)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_same_seed_same_pixels_and_shape_and_dtype_kept(name: str, photos: np.ndarray) -> None:
    first = corrupt(photos, name, 3, seed=7)
    assert first.shape == photos.shape and first.dtype == np.uint8
    assert np.array_equal(first, corrupt(photos, name, 3, seed=7))
    assert _damage(photos, first) > 0


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "motion_blur", "fog", "snow"])
def test_another_seed_draws_other_damage(name: str, photos: np.ndarray) -> None:
    assert not np.array_equal(corrupt(photos, name, 3, seed=7), corrupt(photos, name, 3, seed=8))


@pytest.mark.parametrize("name", [name for name in CORRUPTIONS if name not in NOT_MONOTONE])
def test_higher_severity_does_more_damage(name: str, photos: np.ndarray) -> None:
    damage = [_damage(photos, corrupt(photos, name, severity, seed=0)) for severity in SEVERITIES]
    assert all(low < high for low, high in itertools.pairwise(damage)), damage


@pytest.mark.parametrize("name", NOT_MONOTONE)
def test_every_severity_of_the_other_kinds_is_distinct_damage(name: str, photos: np.ndarray) -> None:
    outputs = [corrupt(photos, name, severity, seed=0) for severity in SEVERITIES]
    assert all(_damage(photos, output) > 0 for output in outputs)
    assert len({output.tobytes() for output in outputs}) == len(SEVERITIES)


@pytest.mark.parametrize(("severity", "quality"), list(zip(SEVERITIES, (80, 65, 58, 50, 40), strict=True)))
def test_jpeg_is_pillow_at_the_published_quality(severity: int, quality: int, photos: np.ndarray) -> None:
    expected = []
    for image in photos:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=quality)
        expected.append(np.asarray(Image.open(buffer).convert("RGB")))
    assert np.array_equal(corrupt(photos, "jpeg_compression", severity, seed=0), np.stack(expected))


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_each_image_stays_itself_so_labels_still_apply(name: str, photos: np.ndarray) -> None:
    """Order is kept: a damaged image is closer to its own original than to any other (severity 1)."""
    damaged = corrupt(photos, name, 1, seed=0).astype(np.float64)
    distances = np.abs(damaged[:, None] - photos[None].astype(np.float64)).mean(axis=(2, 3, 4))
    assert np.array_equal(distances.argmin(axis=1), np.arange(len(photos)))


def test_unknown_kind_or_severity_is_refused(photos: np.ndarray) -> None:
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(photos, "frost", 1, seed=0)
    with pytest.raises(ValueError, match="severity"):
        corrupt(photos, "fog", 6, seed=0)


def test_contrast_and_noise_follow_the_published_formulas(photos: np.ndarray) -> None:
    x = photos / 255.0
    means = x.mean(axis=(1, 2), keepdims=True)
    expected = (np.clip((x - means) * 0.15 + means, 0, 1) * 255).astype(np.uint8)
    assert np.array_equal(corrupt(photos, "contrast", 5, seed=0), expected)
    noise = corrupt(photos, "gaussian_noise", 5, seed=0).astype(np.float64) - photos
    unclipped = (photos > 40) & (photos < 215)
    assert abs(noise[unclipped].std() / 255 - 0.10) < 0.01  # sigma 0.10 at severity 5.
    assert corruptions.SEVERITIES[-1] == 5
