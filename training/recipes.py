"""How an architecture is trained: the `Recipe` and the choices it names.

Recipes are data: `architectures.py` pairs each network with one, and everything
here is recorded in metrics.json. The optimizer, schedule and pipeline modules
read a recipe; none of them needs to know which network it trains.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from training.core.preprocessing import Scaling, TestTimeAugmentation


class Optimizer(StrEnum):
    RMSPROP_DECAY = "rmsprop_decay"  # The tutorial's RMSprop with Keras 2's inverse-time decay.
    SGD_ONECYCLE = "sgd_onecycle"  # Nesterov SGD on a one-cycle schedule (the strong network).


class LrSchedule(StrEnum):
    """The one-cycle shape of `Optimizer.SGD_ONECYCLE`."""

    COSINE = "cosine"  # Linear warm-up, then cosine down to zero.
    LINEAR = "linear"  # A triangle: linear up to the peak, linear down.


@dataclass(frozen=True)
class Recipe:
    epochs: int
    batch_size: int
    learning_rate: float
    optimizer: Optimizer
    scaling: Scaling
    lr_decay: float = 0.0  # Old Keras `decay`: lr / (1 + decay * iterations).
    momentum: float = 0.0
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    ema_momentum: float | None = None  # Weight averaging (Keras optimizer EMA), None for off.
    warmup_fraction: float = 0.0  # Share of steps spent ramping the learning rate up.
    lr_schedule: LrSchedule = LrSchedule.COSINE
    lr_start_fraction: float = 0.0  # LINEAR: the rate at step 0 and at the end, as fractions of the peak.
    lr_end_fraction: float = 0.0
    bias_lr_scale: float = 1.0  # Learning-rate multiplier for BatchNorm biases.
    lookahead_every: int = 0  # Pull the weights towards their running average every N steps (0: off).
    validate_each_epoch: bool = True
    test_time_augmentation: TestTimeAugmentation = TestTimeAugmentation.NONE
    augment: bool = False  # Random horizontal flip and up-to-2-pixel translation while training.
    alternating_flip: bool = False  # With augment: mirror each image in every other epoch instead of at random.
    # Upload realism: this share of the training images is re-encoded as JPEG each epoch, at a quality
    # drawn uniformly from jpeg_quality (inclusive), so the network learns to ignore JPEG artefacts.
    jpeg_fraction: float = 0.0
    jpeg_quality: tuple[int, int] = (30, 95)
    # Everyday-photo damage: this share of the training images gets noise, blur or lowered contrast
    # at a random strength each epoch (`training.augment`), so answers hold on grainy or hazy photos.
    corruption_fraction: float = 0.0
    # This share of the training images is replaced by its AugMix-style mix (`training.augmix`):
    # operations none of the benchmark's corruptions, so robustness to unseen damage.
    augmix_fraction: float = 0.0
    # Training images kept out of training for calibration (the temperature is fitted on them).
    # Which ones follows from the run's seed alone: `training.data.calibration_split`.
    calibration_holdout: int = 0
    # Training steps per call into the compiled graph (Keras's steps_per_execution). The same steps,
    # in the same order, with less Python in between: for small networks at batch 32 the per-step
    # overhead is most of the time. Callbacks then see every N-th batch, so lookahead needs 1.
    steps_per_execution: int = 1
    # Keras dtype policy the network trains under. "mixed_bfloat16" keeps float32 weights and computes
    # in bfloat16: on CPUs with AVX512_BF16 its convolutions run ~1.5x faster (docs/benchmarks.md).
    # Whatever it is, the published copy computes in float32, so serving never sees it.
    precision: str = "float32"

    def as_record(self) -> dict[str, Any]:
        """Plain JSON values (enums as their strings), as metrics.json stores them."""
        return {key: (value.value if isinstance(value, StrEnum) else value) for key, value in asdict(self).items()}
