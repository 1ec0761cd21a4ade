"""Training throughput of model_1 and model_2: this project's pipeline against the tutorial's plain fit.

Both run the same model, optimizer and batch size (32) for the same number of steps on
real CIFAR-10 images, in the same process, one after the other:
  pipeline  training.pipeline's tf.data input (uint8 in memory, scaled and one-hot per batch)
  tutorial  model.fit(x_float32 / 255, one_hot, batch_size=32) with default settings

    CIFAR10_DATA=../shared/datasets/cifar-10-python.tar.gz python bench/train_throughput.py [--steps 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras
import numpy as np

from training.architectures import get_architecture
from training.data import load_cifar10
from training.optimizers import make_optimizer
from training.pipeline import training_batches

WARMUP_STEPS = 30


def _compiled(name: str, steps_per_epoch: int) -> keras.Model:
    architecture = get_architecture(name)
    keras.utils.set_random_seed(0)
    model = architecture.build()
    model.compile(
        optimizer=make_optimizer(architecture.recipe, steps_per_epoch),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def pipeline_rate(name: str, x: np.ndarray, y: np.ndarray, steps: int) -> float:
    recipe = get_architecture(name).recipe
    model = _compiled(name, steps)
    model.fit(training_batches(x, y, recipe, seed=0).batches.take(WARMUP_STEPS), epochs=1, verbose=0)
    data = training_batches(x, y, recipe, seed=0).batches
    start = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
    return steps * recipe.batch_size / (time.perf_counter() - start)


def tutorial_rate(name: str, x: np.ndarray, y: np.ndarray, steps: int) -> float:
    model = _compiled(name, steps)
    x_float = x.astype("float32") / 255
    y_hot = keras.utils.to_categorical(y, 10)
    model.fit(x_float[: WARMUP_STEPS * 32], y_hot[: WARMUP_STEPS * 32], batch_size=32, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(x_float, y_hot, batch_size=32, epochs=1, shuffle=True, verbose=0)
    return len(x) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="timed steps of batch 32 per measurement")
    parser.add_argument("--models", default="model_1,model_2")
    args = parser.parse_args()
    dataset = load_cifar10()
    x, y = dataset.x_train[: args.steps * 32], dataset.y_train[: args.steps * 32]
    print(f"{args.steps} steps of batch 32 ({len(x)} images) per measurement")
    for name in args.models.split(","):
        tutorial = tutorial_rate(name, x, y, args.steps)
        ours = pipeline_rate(name, x, y, args.steps)
        print(
            f"{name}: pipeline {ours:7.0f} img/s   tutorial fit {tutorial:7.0f} img/s   ratio {ours / tutorial:.2f}x",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
