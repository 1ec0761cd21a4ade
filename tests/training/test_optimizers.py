"""The strong network's optimizer: airbench's triangle schedule and fast BatchNorm biases."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from training.architectures import get_architecture
from training.optimizers import BatchNormBiasSGD, WarmupLinearDecay, make_optimizer


def test_triangle_schedule_rises_from_start_to_peak_then_falls_to_end() -> None:
    schedule = WarmupLinearDecay(peak=2.0, warmup_steps=10, total_steps=110, start_fraction=0.2, end_fraction=0.07)
    rates = [float(schedule(step)) for step in (0, 5, 10, 60, 110, 500)]
    assert rates == pytest.approx([0.4, 1.2, 2.0, 2.0 * (1 - 0.93 / 2), 0.14, 0.14])


def test_whitened_convnet_recipe_uses_the_triangle() -> None:
    recipe = get_architecture("whitened_convnet").recipe
    optimizer = make_optimizer(recipe, steps_per_epoch=97)
    assert isinstance(optimizer, BatchNormBiasSGD) and optimizer.bias_lr_scale == 64.0
    # Before the first step the rate is the schedule's start: a fifth of the peak.
    assert float(optimizer.learning_rate) == pytest.approx(recipe.lr_start_fraction * recipe.learning_rate)


def _one_step(bias_lr_scale: float) -> dict[str, np.ndarray]:
    """Weight changes after one plain SGD step on a tiny Dense + BatchNorm network."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, use_bias=False), keras.layers.BatchNormalization(scale=False)]
    )
    model.compile(optimizer=BatchNormBiasSGD(bias_lr_scale=bias_lr_scale, learning_rate=0.1), loss="mse")
    before = {v.name: keras.ops.convert_to_numpy(v) for v in model.trainable_variables}
    x = np.random.default_rng(1).normal(size=(8, 4)).astype("float32")
    model.train_on_batch(x, np.ones((8, 3), "float32"))
    return {v.name: keras.ops.convert_to_numpy(v) - before[v.name] for v in model.trainable_variables}


def test_batchnorm_biases_move_bias_lr_scale_times_further_and_nothing_else_does() -> None:
    plain, scaled = _one_step(1.0), _one_step(64.0)
    assert set(plain) == {"kernel", "beta"}
    for name in plain:
        factor = 64.0 if name == "beta" else 1.0
        assert np.abs(plain[name]).max() > 0, name
        assert scaled[name] == pytest.approx(factor * plain[name], rel=1e-4), name
