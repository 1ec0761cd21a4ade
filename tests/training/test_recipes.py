"""The tutorial recipes' training math: this project's pipeline takes the tutorial fit's steps, bit for bit."""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pytest

from training.architectures import get_architecture
from training.optimizers import make_optimizer
from training.pipeline import training_batches


@pytest.mark.parametrize("name", ["model_1", "model_2"])
def test_steps_per_execution_changes_speed_not_math(name: str) -> None:
    """The tutorial recipes run 50 steps per graph call; the weights must be those of one step per call,
    bit for bit, dropout included, also when the epoch does not divide evenly (10 steps, 7 per call) and when
    one call would cover more than the epoch (50 per call). Batches of 8, not 32: the arithmetic of a step
    is not what is compared, and a quarter of it keeps the test fast."""
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (8 * 10, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 8 * 10)

    def weights_after_two_epochs(steps_per_execution: int) -> list[np.ndarray]:
        recipe = replace(get_architecture(name).recipe, steps_per_execution=steps_per_execution, batch_size=8)
        keras.utils.set_random_seed(0)
        data = training_batches(images, labels, recipe, seed=0)
        model = get_architecture(name).build()
        optimizer = make_optimizer(recipe, data.steps_per_epoch)
        model.compile(optimizer=optimizer, loss="categorical_crossentropy", steps_per_execution=steps_per_execution)
        model.fit(data.batches, epochs=2, verbose=0, shuffle=False)
        return list(model.get_weights())

    reference = weights_after_two_epochs(1)
    for steps in (7, get_architecture(name).recipe.steps_per_execution):
        assert all(np.array_equal(a, b) for a, b in zip(reference, weights_after_two_epochs(steps), strict=True))


@pytest.mark.parametrize("name", ["model_1", "model_2"])
def test_the_tutorial_recipes_take_the_tutorial_fits_steps(name: str) -> None:
    """This project's training (uint8 batches scaled on the fly, 50 steps per graph call) against the
    tutorial's `model.fit(x / 255, one_hot, batch_size=32)` fed the same images in the same order: the
    same weights, bit for bit, after an epoch (dropout included; the last batch is a partial one)."""
    rng = np.random.default_rng(1)
    images, labels = rng.integers(0, 256, (32 * 4 + 8, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 32 * 4 + 8)
    recipe = get_architecture(name).recipe

    def compiled(steps_per_epoch: int, steps_per_execution: int) -> keras.Model:
        keras.utils.set_random_seed(0)
        model = get_architecture(name).build()
        optimizer = make_optimizer(recipe, steps_per_epoch)
        model.compile(optimizer=optimizer, loss="categorical_crossentropy", steps_per_execution=steps_per_execution)
        return model

    keras.utils.set_random_seed(0)  # As `train` does: the shuffle order depends on the global seed too.
    data = training_batches(images, labels, recipe, seed=0)
    ordered = [(x.numpy(), y.numpy()) for x, y in data.batches]  # The pipeline's first-epoch order.
    ours = compiled(data.steps_per_epoch, recipe.steps_per_execution)
    ours.fit(training_batches(images, labels, recipe, seed=0).batches, epochs=1, verbose=0)  # Same seeds, same order.

    pixels = np.rint(np.concatenate([x for x, _ in ordered]) * 255).astype(np.uint8)  # The uint8 images, in order.
    assert sorted(map(bytes, pixels)) == sorted(map(bytes, images))
    x_float = pixels.astype("float32") / 255  # The tutorial's own scaling.
    one_hot = keras.utils.to_categorical(np.concatenate([y.argmax(axis=1) for _, y in ordered]), 10)
    tutorial = compiled(data.steps_per_epoch, 1)
    tutorial.fit(x_float, one_hot, batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(ours.get_weights(), tutorial.get_weights(), strict=True))
