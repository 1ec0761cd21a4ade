"""Multi-worker training on paper and on this machine: bytes all-reduced per step, measured step
times with 1 and 2 local workers, and the projected scaling efficiency on real networks.

    CIFAR10_DATA=../shared/datasets/cifar-10-python.tar.gz python bench/distributed_scaling.py

For each architecture: one short epoch (`--steps` global steps of the recipe's batch) as a
1-worker and as a 2-worker cluster on 127.0.0.1 (`python -m training train --distributed`,
TF_CONFIG per process), reading the epoch's training seconds from the chief's log. Two
workers on the same 2 cores cannot be faster: they split the same cores and add the
all-reduce, so the local ratio measures overhead, not speed-up.

The projection (strong scaling: the recipe's global batch is split over N workers):
step(N) = compute / N + all-reduce(N), the ring all-reduce moving 2 (N - 1) / N times the
gradient bytes through each worker's link, plus 2 (N - 1) latency hops of LATENCY_S;
efficiency = step(1) / (N x step(N)). Compute per step is the measured 1-worker step time.
It ignores stragglers and the input pipeline, so it is an upper bound.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import machine  # noqa: E402
from training.architectures import get_architecture  # noqa: E402

LINKS_GBIT = (1, 10)
WORKERS = (2, 4, 8, 16)
LATENCY_S = 50e-6  # One hop on a datacentre Ethernet link.


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def measured_step_seconds(name: str, workers: int, steps: int, data: str) -> float:
    """Seconds per global step of one epoch, as the chief logs it."""
    batch = get_architecture(name).recipe.batch_size
    ports = [_free_port() for _ in range(workers)]
    with tempfile.TemporaryDirectory() as store:
        options = ["--epochs", "1", "--limit", str(steps * batch), "--calibration-holdout", "0"]
        command = [sys.executable, "-m", "training", "train", name, "--distributed", *options, "--data", data,
                   "--models-dir", store]  # fmt: skip
        processes = []
        for index in range(workers):
            config = {
                "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                "task": {"type": "worker", "index": index},
            }
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": json.dumps(config)}
            processes.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True))
        outputs = [process.communicate(timeout=1800)[0] for process in processes]
    seconds = re.search(r"train_seconds: ([0-9.]+)", outputs[0])
    if seconds is None:
        raise RuntimeError(f"{name} with {workers} workers did not report an epoch:\n{outputs[0][-2000:]}")
    return float(seconds.group(1)) / steps


def projected_efficiency(step_seconds: float, gradient_bytes: int, workers: int, gbit: float) -> float:
    transfer = 2 * (workers - 1) / workers * gradient_bytes * 8 / (gbit * 1e9)
    step = step_seconds / workers + transfer + 2 * (workers - 1) * LATENCY_S
    return step_seconds / (workers * step)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="model_1,model_2,whitened_convnet")
    parser.add_argument("--steps", type=int, default=20, help="global steps per measured epoch")
    parser.add_argument("--data", default=os.environ.get("CIFAR10_DATA", ""))
    args = parser.parse_args()
    print(machine.describe())
    rows = []
    for name in args.models.split(","):
        architecture = get_architecture(name)
        params = sum(int(w.numpy().size) for w in architecture.build().trainable_weights)
        one = measured_step_seconds(name, 1, args.steps, args.data)
        two = measured_step_seconds(name, 2, args.steps, args.data)
        rows.append((name, architecture.recipe.batch_size, params, one, two))
        print(f"{name}: {params:,} trainable parameters, step {one * 1000:.1f} ms (1 worker), "
              f"{two * 1000:.1f} ms (2 local workers)", flush=True)  # fmt: skip
    header = " | ".join(f"{n} w @ {g} Gbit/s" for g in LINKS_GBIT for n in WORKERS)
    print(f"\n| model | batch | MB all-reduced per step | step, 1 worker | step, 2 local workers | {header} |")
    print("|---|---:|---:|---:|---:|" + "---:|" * (len(LINKS_GBIT) * len(WORKERS)))
    for name, batch, params, one, two in rows:
        gradient_bytes = 4 * params
        cells = [f"{projected_efficiency(one, gradient_bytes, n, g):.0%}" for g in LINKS_GBIT for n in WORKERS]
        print(f"| {name} | {batch} | {gradient_bytes / 1e6:.2f} | {one * 1000:.1f} ms | {two * 1000:.1f} ms | "
              + " | ".join(cells) + " |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
