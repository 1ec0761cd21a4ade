"""Training runs side by side, one process per share of the CPUs (`python -m training repeat --jobs N`).

Why processes: the tutorial networks are too small for one training step to keep two cores
busy (model_1 trains at about the same speed on one thread as on two), so two seeds, each
pinned to its own core, train almost twice as many images per second as one seed on both
cores. Each worker pins itself and sizes TensorFlow's thread pools to its share *before*
TensorFlow starts, which is why this module imports neither TensorFlow nor the training code
at the top. A seed's weights depend on its thread count (oneDNN splits sums by thread), never
on what runs beside it: tests/training/test_repeat.py trains a seed beside another and alone.
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np


def cpu_shares(jobs: int) -> list[frozenset[int]]:
    """Split the CPUs this process may use into `jobs` disjoint, nearly equal shares."""
    cpus = sorted(os.sched_getaffinity(0))
    if not 1 <= jobs <= len(cpus):
        raise ValueError(f"--jobs must be between 1 and the {len(cpus)} CPUs this process may use, not {jobs}")
    return [frozenset(int(cpu) for cpu in share) for share in np.array_split(cpus, jobs)]


def pin(cpus: frozenset[int]) -> None:
    """Confine this process to `cpus`, with TensorFlow's intra- and inter-op pools one thread per CPU.

    Call before TensorFlow runs anything: thread pools are sized once, when it first runs an op.
    """
    os.sched_setaffinity(0, cpus)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(len(cpus))
    tf.config.threading.set_inter_op_parallelism_threads(len(cpus))


def train_side_by_side(runs: list[dict[str, Any]], jobs: int) -> list[int]:
    """Train each run (TrainOptions fields) in its own pinned process, `jobs` at a time, in order.

    Returns the seeds whose process failed; the others are recorded whatever happens to those.
    Ctrl-C reaches the workers too: each stops between batches and keeps its backup for a rerun.
    """
    context = multiprocessing.get_context("spawn")  # A fresh interpreter: TensorFlow does not survive fork.
    free = cpu_shares(jobs)
    waiting = list(runs)
    running: dict[int, tuple[BaseProcess, frozenset[int], int]] = {}  # By sentinel: worker, its CPUs, its seed.
    failed = []
    try:
        while waiting or running:
            while waiting and free:
                fields, share = waiting.pop(0), free.pop(0)
                started = context.Process(target=_train, args=(fields, share), name=f"seed-{fields['seed']}")
                started.start()
                running[started.sentinel] = (started, share, fields["seed"])
            for sentinel in wait(list(running)):
                finished, share, seed = running.pop(sentinel)  # type: ignore[arg-type]  # wait() returns what it was given: sentinels.
                finished.join()
                free.append(share)
                if finished.exitcode != 0:
                    print(f"seed {seed}: the training process failed (exit code {finished.exitcode})", flush=True)
                    failed.append(seed)
    finally:
        for worker, _, _ in running.values():
            worker.join()  # Interrupted: the workers save their backups and stop on their own.
    return sorted(failed)


def _train(fields: dict[str, Any], cpus: frozenset[int]) -> None:
    pin(cpus)
    from training.train import TrainOptions, train

    train(TrainOptions(**fields))
