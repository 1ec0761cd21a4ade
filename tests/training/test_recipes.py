"""The tutorial recipes' training math: this project's pipeline takes the tutorial fit's steps, bit for bit."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from training.architectures import get_architecture
from training.optimizers import make_optimizer
from training.pipeline import training_batches


def _same(first: list[np.ndarray], second: list[np.ndarray]) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def _weights_after_each_epoch(model: keras.Model, batches: object, epochs: int) -> list[list[np.ndarray]]:
    weights: list[list[np.ndarray]] = []
    keep = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: weights.append(model.get_weights()))
    model.fit(batches, epochs=epochs, verbose=0, callbacks=[keep])
    return weights


@pytest.mark.parametrize("name", ["model_1", "model_2"])
def test_the_tutorial_recipes_take_the_tutorial_fits_steps(name: str) -> None:
    """This project's training (uint8 batches scaled on the fly, several steps per graph call) against the
    tutorial's `model.fit(x / 255, one_hot, batch_size=32)` fed the same images in the same order: the same
    weights, bit for bit, after an epoch (dropout included; the last batch is a partial one). Steps per
    graph call change the speed, never the math: the recipe's 50 (more than the epoch's 5 steps) and 3 (which
    does not divide them) both take the tutorial's steps, and still agree after a second epoch."""
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
    pixels = np.rint(np.concatenate([x for x, _ in ordered]) * 255).astype(np.uint8)  # The uint8 images, in order.
    assert sorted(map(bytes, pixels)) == sorted(map(bytes, images))
    x_float = pixels.astype("float32") / 255  # The tutorial's own scaling.
    one_hot = keras.utils.to_categorical(np.concatenate([y.argmax(axis=1) for _, y in ordered]), 10)
    tutorial = compiled(data.steps_per_epoch, 1)
    tutorial.fit(x_float, one_hot, batch_size=32, epochs=1, shuffle=False, verbose=0)

    after_two_epochs = []
    for steps_per_execution in (recipe.steps_per_execution, 3):
        ours = compiled(data.steps_per_epoch, steps_per_execution)
        weights = _weights_after_each_epoch(ours, training_batches(images, labels, recipe, seed=0).batches, 2)
        assert _same(weights[0], tutorial.get_weights()), f"{steps_per_execution} steps per call, first epoch"
        after_two_epochs.append(weights[1])
    assert _same(*after_two_epochs)
