"""Optimizers and learning-rate schedules named by a recipe."""

from __future__ import annotations

import keras

from training.architectures import Recipe

TUTORIAL_RMSPROP_EPSILON = 1e-14


def make_optimizer(recipe: Recipe, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    if recipe.optimizer == "rmsprop_decay":
        # Keras 2's RMSprop(decay=d) meant lr / (1 + d * iterations); Keras 3 spells it as a schedule.
        schedule = keras.optimizers.schedules.InverseTimeDecay(
            recipe.learning_rate, decay_steps=1, decay_rate=recipe.lr_decay
        )
        # Keras 2 divided by sqrt(v) + 1e-7; Keras 3 divides by sqrt(v + epsilon), so its default
        # epsilon (1e-7) damps like 3e-4 would have. epsilon = (1e-7)^2 restores the old update.
        return keras.optimizers.RMSprop(learning_rate=schedule, epsilon=TUTORIAL_RMSPROP_EPSILON)
    if recipe.optimizer == "sgd_onecycle":
        total = recipe.epochs * steps_per_epoch
        warmup = max(1, int(recipe.warmup_fraction * total))
        # Linear warm-up to the peak, then cosine down to zero: a smooth one-cycle.
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0,
            decay_steps=max(1, total - warmup),
            warmup_target=recipe.learning_rate,
            warmup_steps=warmup,
        )
        return keras.optimizers.SGD(
            learning_rate=schedule,
            momentum=recipe.momentum,
            nesterov=True,
            weight_decay=recipe.weight_decay or None,
            use_ema=recipe.ema_momentum is not None,
            ema_momentum=recipe.ema_momentum or 0.99,
        )
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}")
