"""Input pipelines: what the network sees in training and evaluation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from training.architectures import get_architecture
from training.pipeline import evaluation_batches, training_batches
from training.robustness import jpeg


def test_evaluation_batches_are_scaled_one_hot_and_in_order() -> None:
    images = np.arange(5 * 32 * 32 * 3, dtype=np.uint32).reshape(5, 32, 32, 3).astype(np.uint8)
    recipe = replace(get_architecture("model_1").recipe, batch_size=2)
    batches = list(evaluation_batches(images, np.array([3, 1, 4, 1, 5]), recipe))
    assert [len(x) for x, _ in batches] == [2, 2, 1]
    x = np.concatenate([x.numpy() for x, _ in batches])
    y = np.concatenate([y.numpy() for _, y in batches])
    assert np.array_equal(x, images.astype(np.float32) / 255)
    assert y.argmax(axis=1).tolist() == [3, 1, 4, 1, 5] and y.sum() == 5


def test_without_alternating_flip_an_epoch_ends_with_the_data() -> None:
    recipe = replace(get_architecture("model_1").recipe, batch_size=4)
    data = training_batches(np.zeros((10, 32, 32, 3), np.uint8), np.zeros(10, np.int64), recipe, seed=0)
    assert not data.endless and data.steps_per_epoch == 3
    assert sum(len(x) for x, _ in data.batches) == 10


def test_alternating_flip_mirrors_each_image_in_exactly_one_of_two_epochs() -> None:
    count, batch = 64, 16
    # Red: dark left half, bright right half; a 2-pixel shift keeps the sides, a mirror swaps them.
    # Green: the image's number, the same in every pixel.
    images = np.zeros((count, 32, 32, 3), np.uint8)
    images[:, :, 16:, 0] = 255
    images[:, :, :, 1] = np.arange(count)[:, None, None]
    # JPEG artefacts or noise would blur the number written in green: this test is about flipping alone.
    recipe = replace(
        get_architecture("whitened_convnet").recipe, batch_size=batch, jpeg_fraction=0.0, corruption_fraction=0.0
    )
    data = training_batches(images, np.zeros(count, np.int64), recipe, seed=0)
    assert data.endless and data.steps_per_epoch == count // batch

    mirrored: list[dict[int, bool]] = [{}, {}]
    for step, (x, _) in enumerate(data.batches.take(2 * data.steps_per_epoch)):
        for image in x.numpy():
            number = round(float(image[..., 1].mean()) * 255)
            mirrored[step // data.steps_per_epoch][number] = image[:, :8, 0].mean() > 0.5
    assert mirrored[0].keys() == mirrored[1].keys() == set(range(count))
    assert all(mirrored[0][key] != mirrored[1][key] for key in mirrored[0])
    assert 0 < sum(mirrored[0].values()) < len(mirrored[0])


def _textured(count: int) -> np.ndarray:
    """Smooth gradients plus noise: JPEG visibly changes them, unlike flat colours."""
    rng = np.random.default_rng(1)
    ramp = np.linspace(0, 200, 32, dtype=np.float32)[None, :, None, None]
    noise = rng.normal(0, 25, (count, 32, 32, 3))
    return np.clip(ramp + 30 + noise, 0, 255).astype(np.uint8)


def test_jpeg_augmentation_leaves_real_jpeg_artefacts_and_the_labels_alone() -> None:
    count = 32
    images, labels = _textured(count), np.arange(count) % 10
    recipe = replace(
        get_architecture("model_1").recipe, batch_size=count, jpeg_fraction=1.0, jpeg_quality=(50, 50), augment=False
    )
    x, y = next(iter(training_batches(images, labels, recipe, seed=0).batches))
    seen = np.rint(x.numpy() * 255).astype(np.uint8)
    order = [int(np.abs(images.astype(int) - image).sum(axis=(1, 2, 3)).argmin()) for image in seen]
    assert sorted(order) == list(range(count))  # Every image came through once (shuffled)...
    assert y.numpy().argmax(axis=1).tolist() == labels[order].tolist()  # ...with its own label.
    originals = images[order]
    changed = np.abs(seen.astype(int) - originals).mean()
    # A JPEG decoded and encoded again at the same quality is nearly a fixed point; the original is not.
    recompressed = np.abs(jpeg(seen, 50).astype(int) - seen).mean()
    assert changed > 3 * recompressed and changed > 2.0


def test_jpeg_fraction_decides_how_many_images_are_reencoded() -> None:
    count = 400
    images, labels = _textured(count), np.zeros(count, np.int64)
    recipe = replace(get_architecture("model_1").recipe, batch_size=count, jpeg_fraction=0.5, augment=False)
    x, _ = next(iter(training_batches(images, labels, recipe, seed=0).batches))
    seen = np.rint(x.numpy() * 255).astype(np.uint8)
    untouched = sum(bool((np.abs(images.astype(int) - image).sum(axis=(1, 2, 3)) == 0).any()) for image in seen)
    assert 0.4 * count < untouched < 0.6 * count
