"""Optimizers and learning-rate schedules named by a recipe."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from training.recipes import LrSchedule, Optimizer, Recipe

TUTORIAL_RMSPROP_EPSILON = 1e-14


def make_optimizer(recipe: Recipe, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    if recipe.optimizer is Optimizer.RMSPROP_DECAY:
        # Keras 2's RMSprop(decay=d) meant lr / (1 + d * iterations); Keras 3 spells it as a schedule.
        schedule = keras.optimizers.schedules.InverseTimeDecay(
            recipe.learning_rate, decay_steps=1, decay_rate=recipe.lr_decay
        )
        # Keras 2 divided by sqrt(v) + 1e-7; Keras 3 divides by sqrt(v + epsilon), so its default
        # epsilon (1e-7) damps like 3e-4 would have. epsilon = (1e-7)^2 restores the old update.
        return keras.optimizers.RMSprop(learning_rate=schedule, epsilon=TUTORIAL_RMSPROP_EPSILON)
    if recipe.optimizer is Optimizer.SGD_ONECYCLE:
        return BatchNormBiasSGD(
            bias_lr_scale=recipe.bias_lr_scale,
            learning_rate=_one_cycle(recipe, recipe.epochs * steps_per_epoch),
            momentum=recipe.momentum,
            nesterov=True,
            weight_decay=recipe.weight_decay or None,
            use_ema=recipe.ema_momentum is not None,
            ema_momentum=recipe.ema_momentum or 0.99,
        )
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}")


def _one_cycle(recipe: Recipe, total_steps: int) -> keras.optimizers.schedules.LearningRateSchedule:
    warmup = max(1, int(recipe.warmup_fraction * total_steps))
    if recipe.lr_schedule is LrSchedule.COSINE:
        # Linear warm-up from zero to the peak, then cosine down to zero.
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0,
            decay_steps=max(1, total_steps - warmup),
            warmup_target=recipe.learning_rate,
            warmup_steps=warmup,
        )
    if recipe.lr_schedule is LrSchedule.LINEAR:
        return WarmupLinearDecay(
            peak=recipe.learning_rate,
            warmup_steps=warmup,
            total_steps=max(total_steps, warmup + 1),
            start_fraction=recipe.lr_start_fraction,
            end_fraction=recipe.lr_end_fraction,
        )
    raise ValueError(f"unknown learning-rate schedule {recipe.lr_schedule!r}")


class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """A triangle: linear from start_fraction * peak up to the peak, then linear down to end_fraction * peak.

    airbench's schedule (0.2 -> 1 -> 0.07 of the peak); serialisable, so a backup can hold it.
    """

    def __init__(
        self, peak: float, warmup_steps: int, total_steps: int, start_fraction: float, end_fraction: float
    ) -> None:
        self.peak = peak
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.start_fraction = start_fraction
        self.end_fraction = end_fraction

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        rising = ops.minimum(step / self.warmup_steps, 1.0)
        falling = ops.clip((step - self.warmup_steps) / (self.total_steps - self.warmup_steps), 0.0, 1.0)
        fraction = ops.where(
            step < self.warmup_steps,
            self.start_fraction + (1.0 - self.start_fraction) * rising,
            1.0 + (self.end_fraction - 1.0) * falling,
        )
        return self.peak * fraction

    def get_config(self) -> dict[str, float | int]:
        return {
            "peak": self.peak,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "start_fraction": self.start_fraction,
            "end_fraction": self.end_fraction,
        }


class BatchNormBiasSGD(keras.optimizers.SGD):
    """SGD whose BatchNorm biases (`beta`) learn `bias_lr_scale` times faster than the other weights.

    With BatchNorm's gain fixed at 1, its bias is the only per-channel knob, and airbench
    found 64x its learning rate worth a quarter of the epochs. Weight decay is not scaled:
    Keras applies it with the base rate.
    """

    def __init__(self, bias_lr_scale: float = 1.0, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.bias_lr_scale = bias_lr_scale

    def build(self, variables: list[keras.Variable]) -> None:
        super().build(variables)
        # By position, as SGD finds its momentum slots: update_step may get the backend's own variable.
        self._bias_indices = {index for index, variable in enumerate(variables) if variable.name == "beta"}

    def update_step(self, gradient: object, variable: keras.Variable, learning_rate: object) -> None:
        if self._get_variable_index(variable) in self._bias_indices:
            learning_rate = ops.multiply(ops.cast(learning_rate, variable.dtype), self.bias_lr_scale)
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict[str, object]:
        return super().get_config() | {"bias_lr_scale": self.bias_lr_scale}
