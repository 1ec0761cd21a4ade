"""The architectures this project trains, each with the recipe that trains it.

`ARCHITECTURES` maps a name to an `Architecture`; adding a network is one entry.
model_1 and model_2 are the Keras tutorial's networks, layer for layer, trained
with the tutorial's recipe. `whitened_convnet` is this project's strong network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import keras
import numpy as np
from keras import layers

from training import whitened_convnet
from training.core.classes import NUM_CLASSES
from training.core.preprocessing import INPUT_SHAPE, Scaling, TestTimeAugmentation
from training.core.records import Reference
from training.recipes import LrSchedule, Optimizer, Recipe


@dataclass(frozen=True)
class Architecture:
    name: str
    description: str
    build: Callable[[], keras.Model]
    recipe: Recipe
    reference: Reference | None = None
    # Data-dependent initialisation run once before training (whitening filters, for example).
    initialize: Callable[[keras.Model, np.ndarray, Scaling], None] | None = None


def build_model_1() -> keras.Model:
    """The tutorial's first network: two strided 5x5 convolutions, then a 512-unit dense layer."""
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(32, (5, 5), strides=(2, 2), padding="same"),
            layers.Activation("relu"),
            layers.Conv2D(32, (5, 5), strides=(2, 2)),
            layers.Activation("relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(512),
            layers.Activation("relu"),
            layers.Dropout(0.5),
            layers.Dense(NUM_CLASSES),
            layers.Activation("softmax"),
        ],
        name="model_1",
    )


def build_model_2() -> keras.Model:
    """The tutorial's second network: four unstrided convolutions at full resolution."""
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(32, (5, 5), strides=(1, 1), padding="same"),
            layers.Activation("relu"),
            layers.Conv2D(32, (5, 5), strides=(1, 1)),
            layers.Activation("relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Dropout(0.5),
            layers.Conv2D(32, (3, 3)),
            layers.Activation("relu"),
            layers.Conv2D(16, (3, 3)),
            layers.Activation("relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Dropout(0.5),
            layers.Flatten(),
            layers.Dense(512),
            layers.Activation("relu"),
            layers.Dropout(0.5),
            layers.Dense(NUM_CLASSES),
            layers.Activation("softmax"),
        ],
        name="model_2",
    )


def _tutorial_reference(test_accuracy: float, epochs: int, seconds_per_epoch: float) -> Reference:
    return Reference(
        test_accuracy=test_accuracy,
        epochs=epochs,
        seconds_per_epoch=seconds_per_epoch,
        hardware="2019 laptop CPU (the tutorial's figures)",
        source="Keras CIFAR-10 CNN tutorial",
    )


ARCHITECTURES: dict[str, Architecture] = {
    "model_1": Architecture(
        name="model_1",
        description="Tutorial CNN 1: 2 strided 5x5 convs (32), max-pool, dense 512; 181,162 parameters.",
        build=build_model_1,
        recipe=Recipe(
            epochs=15,
            batch_size=32,
            learning_rate=0.0005,
            optimizer=Optimizer.RMSPROP_DECAY,
            lr_decay=1e-6,
            scaling=Scaling.UNIT,
            steps_per_execution=50,  # Same steps, same math (tests/training/test_train.py), less overhead.
        ),
        reference=_tutorial_reference(0.6450, epochs=15, seconds_per_epoch=21.0),
    ),
    "model_2": Architecture(
        name="model_2",
        description="Tutorial CNN 2: 4 unstrided convs (32/32/32/16), 2 max-pools, dense 512; 252,378 parameters.",
        build=build_model_2,
        recipe=Recipe(
            epochs=5,
            batch_size=32,
            learning_rate=0.0001,
            optimizer=Optimizer.RMSPROP_DECAY,
            lr_decay=1e-6,
            scaling=Scaling.UNIT,
            steps_per_execution=50,
        ),
        reference=_tutorial_reference(0.5064, epochs=5, seconds_per_epoch=199.0),
    ),
    "whitened_convnet": Architecture(
        name="whitened_convnet",
        description=(
            "airbench-style CNN: frozen 2x2 patch-whitening stem, 3 conv-pool-BN-GELU blocks (64/256/256), "
            "label smoothing, Nesterov SGD with 64x BatchNorm-bias rate and lookahead, "
            "alternating-flip + translate + JPEG + noise/blur/contrast augmentation, flip + translate TTA, "
            "temperature-calibrated."
        ),
        build=partial(whitened_convnet.build, widths=(64, 256, 256)),
        initialize=whitened_convnet.initialize,
        recipe=Recipe(
            epochs=24,  # v4 (v3: 16): +0.27 points lossless, +0.35 at JPEG q75. v2: 10 epochs at 64/192/192.
            batch_size=512,
            learning_rate=0.75,  # airbench's 1.5 per 1024 images, for a mean (not summed) loss.
            optimizer=Optimizer.SGD_ONECYCLE,
            momentum=0.85,
            # airbench's coupled decay shrinks the weights by 0.1% per 512-image step at the peak
            # rate, amplified 1 / (1 - momentum) = 6.7x by momentum: 0.67%. Keras decays decoupled,
            # by weight_decay * lr per step, not through momentum: 8.9e-3 * 0.75 = 0.67%.
            weight_decay=8.9e-3,
            label_smoothing=0.2,
            warmup_fraction=0.23,
            lr_schedule=LrSchedule.LINEAR,
            lr_start_fraction=0.2,
            lr_end_fraction=0.07,
            bias_lr_scale=64.0,
            lookahead_every=5,
            scaling=Scaling.UNIT,
            augment=True,
            alternating_flip=True,
            jpeg_fraction=0.5,
            # v9: half the images also get noise, blur or lowered contrast; corruption mean 74.7% -> 87.8%
            # for -0.6 points lossless (docs/benchmarks.md, "Everyday photos").
            corruption_fraction=0.5,
            calibration_holdout=2500,
            test_time_augmentation=TestTimeAugmentation.HFLIP_TRANSLATE,
        ),
    ),
}


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {name!r}; known: {known}") from None
