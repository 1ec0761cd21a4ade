"""Input pipelines: what the network sees in training and evaluation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from training.architectures import get_architecture
from training.pipeline import evaluation_batches, training_batches


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
    recipe = replace(get_architecture("whitened_convnet").recipe, batch_size=batch)
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
