"""Callbacks the training loop adds: lookahead weight averaging."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from training.callbacks import Lookahead


def _model() -> keras.Model:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(optimizer="sgd", loss="mse")
    model.get_layer(index=0).kernel.assign(np.zeros((2, 1), "float32"))
    return model


def _after_a_jump(step: int, total_steps: int) -> tuple[Lookahead, np.ndarray]:
    """The kernel after it jumped from 0 to 1 and the callback then ran at `step`."""
    model = _model()
    lookahead = Lookahead(every=5, total_steps=total_steps)
    lookahead.set_model(model)
    lookahead.on_train_begin()
    model.layers[0].kernel.assign(np.ones((2, 1), "float32"))
    model.optimizer.iterations.assign(step)
    lookahead.on_train_batch_end(0)
    return lookahead, keras.ops.convert_to_numpy(model.layers[0].kernel)


def test_early_steps_leave_the_weights_alone() -> None:
    _, kernel = _after_a_jump(step=5, total_steps=1000)
    assert kernel == pytest.approx(np.ones((2, 1)), abs=1e-6)


def test_late_steps_pull_the_weights_back_towards_their_average() -> None:
    _, kernel = _after_a_jump(step=1000, total_steps=1000)
    assert kernel == pytest.approx(np.full((2, 1), 1 - 0.95**5))


def test_only_every_nth_step_is_averaged() -> None:
    _, kernel = _after_a_jump(step=999, total_steps=1000)
    assert kernel == pytest.approx(np.ones((2, 1)))


def test_a_finished_run_ends_on_the_average() -> None:
    lookahead, kernel = _after_a_jump(step=1000, total_steps=1000)
    lookahead.model.layers[0].kernel.assign(np.full((2, 1), 7.0, "float32"))
    lookahead.on_train_end()
    assert keras.ops.convert_to_numpy(lookahead.model.layers[0].kernel) == pytest.approx(kernel)
