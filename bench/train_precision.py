"""Training speed of a recipe under each Keras dtype policy (`python -m training train --precision`).

Each measurement is a fresh process that trains the architecture's own recipe (its pipeline,
augmentations, optimizer and steps per call) on the first `--steps` batches of the CIFAR-10
training images for `--epochs` epochs and reports the median steady epoch (the first traces
the graph and is not counted). Precisions are measured in turn, `--repeats` times, so the
machine's drift hits each alike. Compare figures from one run only.

    CIFAR10_DATA=../shared/datasets/cifar-10-python.tar.gz python bench/train_precision.py \\
        [--model whitened_convnet] [--precisions float32,mixed_bfloat16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench import machine


def measure(model: str, precision: str, steps: int, epochs: int) -> float:
    """Images per second of one fresh training process."""
    command = [sys.executable, __file__, "--child", "--model", model, "--precisions", precision]
    output = subprocess.run(
        [*command, "--steps", str(steps), "--epochs", str(epochs)], capture_output=True, text=True, check=True
    )
    return float(json.loads(output.stdout.splitlines()[-1])["rate"])


def child(model_name: str, precision: str, steps: int, epochs: int) -> None:
    import keras

    from training.architectures import get_architecture
    from training.data import load_cifar10
    from training.optimizers import make_optimizer
    from training.pipeline import training_batches
    from training.train import build_for_training

    architecture = get_architecture(model_name)
    recipe = architecture.recipe
    dataset = load_cifar10()
    count = steps * recipe.batch_size
    x, y = dataset.x_train[:count], dataset.y_train[:count]
    keras.utils.set_random_seed(0)
    data = training_batches(x, y, recipe, seed=0)
    model = build_for_training(architecture, precision)
    if architecture.initialize:
        architecture.initialize(model, x, recipe.scaling)
    model.compile(
        optimizer=make_optimizer(recipe, data.steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
        steps_per_execution=recipe.steps_per_execution,
    )
    seconds: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seconds.append(-time.perf_counter()),
        on_epoch_end=lambda epoch, logs: seconds.append(seconds.pop() + time.perf_counter()),
    )
    model.fit(
        data.batches,
        epochs=epochs,
        steps_per_epoch=data.steps_per_epoch if data.endless else None,
        verbose=0,
        callbacks=[timer],
    )
    print(json.dumps({"rate": count / float(np.median(seconds[1:])), "epoch_seconds": seconds}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="whitened_convnet")
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--steps", type=int, default=20, help="batches of the recipe's size per epoch")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per measurement; the first is not counted")
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each precision, in turn")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is not counted")
    precisions = args.precisions.split(",")
    if args.child:
        child(args.model, precisions[0], args.steps, args.epochs)
        return 0
    print(machine.describe())
    print(f"{args.model}: {args.steps} batches per epoch, {args.epochs} epochs per measurement", flush=True)
    rates: dict[str, list[float]] = {precision: [] for precision in precisions}
    for repeat in range(args.repeats):
        for precision in precisions:
            rates[precision].append(measure(args.model, precision, args.steps, args.epochs))
        print(f"#{repeat + 1}: " + "   ".join(f"{p} {rates[p][-1]:6.0f} img/s" for p in precisions), flush=True)
    baseline = np.median(rates[precisions[0]])
    for precision, measured in rates.items():
        median = float(np.median(measured))
        print(
            f"{precision}: median {median:.0f} img/s ({median / baseline:.2f}x {precisions[0]}), "
            f"range {min(measured):.0f}-{max(measured):.0f}; a 50,000-image epoch in {50_000 / median:.0f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
