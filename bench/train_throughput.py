"""Training throughput of model_1 and model_2: this project's training against the tutorial's plain fit.

Both run the same model, optimizer and batch size (32), the same math per step (checked
bit for bit by tests/training/test_train.py), on real CIFAR-10 images, in the same
process, alternating, `--repeats` times; the script prints each measurement, then the
median and range of the ratio:
  pipeline  training.pipeline's tf.data input (uint8 in memory, scaled and one-hot per batch)
            with the recipe's steps_per_execution (steps per call into the compiled graph)
  tutorial  model.fit(x_float32 / 255, one_hot, batch_size=32) with default settings

    CIFAR10_DATA=../shared/datasets/cifar-10-python.tar.gz python bench/train_throughput.py [--steps 1500]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras
import numpy as np

from bench import machine
from training.architectures import get_architecture
from training.data import load_cifar10
from training.optimizers import make_optimizer
from training.pipeline import training_batches

WARMUP_STEPS = 30


def _compiled(name: str, steps_per_epoch: int, steps_per_execution: int = 1) -> keras.Model:
    architecture = get_architecture(name)
    keras.utils.set_random_seed(0)
    model = architecture.build()
    model.compile(
        optimizer=make_optimizer(architecture.recipe, steps_per_epoch),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    return model


def pipeline_rate(name: str, x: np.ndarray, y: np.ndarray, steps: int) -> float:
    recipe = get_architecture(name).recipe
    model = _compiled(name, steps, recipe.steps_per_execution)
    warmup = WARMUP_STEPS * recipe.steps_per_execution
    model.fit(training_batches(x, y, recipe, seed=0).batches.take(warmup), epochs=1, verbose=0)
    data = training_batches(x, y, recipe, seed=0).batches
    start = time.perf_counter()
    model.fit(data, epochs=1, verbose=0)
    return len(x) / (time.perf_counter() - start)


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
    parser.add_argument("--steps", type=int, default=1500, help="timed steps of batch 32 per measurement")
    parser.add_argument("--models", default="model_1,model_2")
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each, alternating")
    args = parser.parse_args()
    print(machine.describe())
    dataset = load_cifar10()
    x, y = dataset.x_train[: args.steps * 32], dataset.y_train[: args.steps * 32]
    print(f"{args.steps} steps of batch 32 ({len(x)} images) per measurement, {args.repeats} repeats")
    for name in args.models.split(","):
        ratios = []
        for repeat in range(args.repeats):
            tutorial = tutorial_rate(name, x, y, args.steps)
            ours = pipeline_rate(name, x, y, args.steps)
            ratios.append(ours / tutorial)
            print(
                f"{name} #{repeat + 1}: pipeline {ours:7.0f} img/s   tutorial fit {tutorial:7.0f} img/s   "
                f"ratio {ours / tutorial:.2f}x",
                flush=True,
            )
        print(f"{name}: ratio median {np.median(ratios):.2f}x, range {min(ratios):.2f}x to {max(ratios):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
