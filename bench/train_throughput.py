"""Training throughput of model_1 and model_2: this project's training against the tutorial's plain fit.

Three ways to train the same recipe (model, RMSprop, batch 32, float32), each measured in a
fresh process, in turn, `--repeats` times:
  tutorial      model.fit(x_float32 / 255, one_hot, batch_size=32), TensorFlow's default threads
  pipeline      this project's training: training.pipeline's uint8 batches, scaled and one-hot on
                the fly, and the recipe's steps_per_execution; one process on every CPU
  side-by-side  `repeat --jobs N`: N pipeline processes at once, each pinned to its share of the
                CPUs by training.workers (one CPU, one thread each on a 2-CPU machine); the figure
                is the sum of their rates, i.e. images per second trained by `repeat`
A rate is the median steady epoch (epochs 2.., from Keras's epoch callbacks): the first epoch
traces the graph, and what happens after the last (iterator teardown) is not training. The
tutorial fit and the pipeline take the same steps bit for bit (tests/training/test_train.py);
a side-by-side worker runs one thread, which changes the rounding of oneDNN's sums, not the
steps (a seed's result does not depend on its neighbour: tests/training/test_repeat.py).
Last, the ceiling: a float32 1024x1024 matrix product in every CPU share at once (TensorFlow,
the same thread settings), against which each mode's FLOP rate (3x bench/flops.py's forward
count per image) is printed.

    CIFAR10_DATA=../shared/datasets/cifar-10-python.tar.gz python bench/train_throughput.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench import machine
from training import workers

MODES = ("tutorial", "pipeline", "side-by-side")


def measure(mode: str, name: str, steps: int, epochs: int, jobs: int) -> float:
    """Images per second of one mode, from fresh processes."""
    if mode == "side-by-side":
        return _run_children(name, steps, epochs, [("pipeline", share) for share in workers.cpu_shares(jobs)])
    return _run_children(name, steps, epochs, [(mode, None)])


def _run_children(name: str, steps: int, epochs: int, roles: list[tuple[str, frozenset[int] | None]]) -> float:
    """Start one process per role, let them all start training at once, and sum their rates."""
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", role, "--models", name]
            + ["--steps", str(steps), "--epochs", str(epochs)]
            + (["--cpus", ",".join(map(str, sorted(share)))] if share else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for role, share in roles
    ]
    for process in children:  # Each has imported TensorFlow and loaded its data ...
        assert process.stdout is not None and process.stdin is not None  # Both piped above.
        while (line := process.stdout.readline()) and line.strip() != "ready":
            pass
        if not line:
            raise RuntimeError(f"a {name} measurement did not start")
    for process in children:  # ... before any starts training.
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    rates = [json.loads(process.communicate()[0].splitlines()[-1])["rate"] for process in children]
    if any(process.returncode for process in children):
        raise RuntimeError(f"a {name} measurement failed")
    return float(sum(rates))


def child(role: str, name: str, steps: int, epochs: int, cpus: str | None) -> None:
    """One training process: fit `epochs` epochs of `steps` batches, print the steady rate as JSON."""
    if cpus:
        workers.pin(frozenset(int(cpu) for cpu in cpus.split(",")))
    if role == "gemm":
        _gemm_child()
        return
    import keras

    from training.architectures import get_architecture
    from training.data import load_cifar10
    from training.optimizers import make_optimizer
    from training.pipeline import training_batches

    recipe = get_architecture(name).recipe
    dataset = load_cifar10()
    x, y = dataset.x_train[: steps * 32], dataset.y_train[: steps * 32]
    keras.utils.set_random_seed(0)
    model = get_architecture(name).build()
    model.compile(
        optimizer=make_optimizer(recipe, steps),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=recipe.steps_per_execution if role == "pipeline" else 1,
    )
    seconds: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seconds.append(-time.perf_counter()),
        on_epoch_end=lambda epoch, logs: seconds.append(seconds.pop() + time.perf_counter()),
    )
    if role == "pipeline":
        data = training_batches(x, y, recipe, seed=0).batches
        _wait_for_the_others()
        model.fit(data, epochs=epochs, verbose=0, callbacks=[timer])
    else:
        x_float, y_hot = x.astype("float32") / 255, keras.utils.to_categorical(y, 10)
        _wait_for_the_others()
        model.fit(x_float, y_hot, batch_size=32, epochs=epochs, shuffle=True, verbose=0, callbacks=[timer])
    print(json.dumps({"rate": len(x) / float(np.median(seconds[1:])), "epoch_seconds": seconds}), flush=True)


def _gemm_child(size: int = 1024, seconds: float = 5.0) -> None:
    import tensorflow as tf

    a, b = tf.random.normal((size, size)), tf.random.normal((size, size))
    product = tf.function(tf.linalg.matmul)
    product(a, b).numpy()
    _wait_for_the_others()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        product(a, b).numpy()
        count += 1
    print(json.dumps({"rate": 2 * size**3 * count / (time.perf_counter() - start) / 1e9}), flush=True)


def _wait_for_the_others() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=0, help="batches of 32 per epoch (default: 1500 / 300)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per measurement; the first is not counted")
    parser.add_argument("--models", default="model_1,model_2")
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each mode, in turn")
    parser.add_argument(
        "--jobs", type=int, default=len(os.sched_getaffinity(0)), help="side-by-side processes (default: one per CPU)"
    )
    parser.add_argument("--child", choices=["tutorial", "pipeline", "gemm"], help=argparse.SUPPRESS)
    parser.add_argument("--cpus", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is not counted")
    if args.child:
        child(args.child, args.models, args.steps, args.epochs, args.cpus)
        return 0
    print(machine.describe())
    medians: dict[str, dict[str, float]] = {}
    print(f"side-by-side: {args.jobs} processes on CPU shares {[sorted(s) for s in workers.cpu_shares(args.jobs)]}")
    for name in args.models.split(","):
        steps = args.steps or {"model_1": 1500}.get(name, 300)
        print(f"{name}: {steps} steps of batch 32 per epoch, {args.epochs} epochs per measurement", flush=True)
        rates: dict[str, list[float]] = {mode: [] for mode in MODES}
        for repeat in range(args.repeats):
            for mode in MODES:
                rates[mode].append(measure(mode, name, steps, args.epochs, args.jobs))
            tutorial = rates["tutorial"][-1]
            row = (f"{mode} {rates[mode][-1]:7.0f} img/s ({rates[mode][-1] / tutorial:.2f}x)" for mode in MODES)
            print(f"{name} #{repeat + 1}: " + "   ".join(row), flush=True)
        for mode in MODES[1:]:
            ratios = np.array(rates[mode]) / np.array(rates["tutorial"])
            print(
                f"{name} {mode} / tutorial: median {np.median(ratios):.2f}x, "
                f"range {ratios.min():.2f}x to {ratios.max():.2f}x over {args.repeats} repeats"
            )
        medians[name] = {mode: float(np.median(rates[mode])) for mode in MODES}
    from bench.flops import forward_flops  # Not at the top: children pin themselves before TensorFlow loads.
    from training.architectures import get_architecture

    ceiling = _run_children("gemm", 0, 2, [("gemm", share) for share in workers.cpu_shares(args.jobs)])
    print(f"ceiling: float32 1024x1024 matmul in {args.jobs} processes at once, {ceiling:.0f} GFLOP/s in all")
    for name, by_mode in medians.items():
        train_flops = 3 * forward_flops(get_architecture(name).build())
        shares = "   ".join(f"{mode} {rate * train_flops / 1e9 / ceiling:.0%}" for mode, rate in by_mode.items())
        print(f"{name}: {train_flops / 1e6:.0f} MFLOP per training image; median rates as a share of it: {shares}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
