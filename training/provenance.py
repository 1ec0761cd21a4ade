"""Where a run came from: what identifies it (for resuming) and what it ran on (for the record)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.core.records import DatasetFingerprint
from training.data import Cifar10, array_sha256
from training.recipes import Recipe


@dataclass(frozen=True)
class RunDescription:
    """Everything that identifies a run; a backup is resumed only when this matches exactly."""

    architecture: str
    recipe: dict[str, Any]
    seed: int
    limit: int | None
    train_images: int
    dataset: DatasetFingerprint
    init_from: str | None = None  # A fine-tuning run's starting version (store-relative folder), else None.

    def as_json(self) -> dict[str, Any]:
        """As run.json holds it (tuples become lists), so a description compares equal to its stored self."""
        described: dict[str, Any] = json.loads(json.dumps(asdict(self) | {"dataset": self.dataset.model_dump()}))
        return described

    def hyperparameters(self) -> dict[str, Any]:
        """The recipe plus what this run chose, as metrics.json records them."""
        chosen = {"seed": self.seed, "limit": self.limit, "train_images": self.train_images}
        return self.recipe | chosen | ({"init_from": self.init_from} if self.init_from else {})


def describe_run(
    architecture: str,
    recipe: Recipe,
    seed: int,
    limit: int | None,
    dataset: Cifar10,
    train_images: int,
    init_from: str | None = None,
    extra: tuple[np.ndarray, np.ndarray] | None = None,
) -> RunDescription:
    fingerprint = DatasetFingerprint(
        source=dataset.source,
        x_train_sha256=array_sha256(dataset.x_train),
        x_test_sha256=array_sha256(dataset.x_test),
        labels_sha256=array_sha256(np.concatenate([dataset.y_train, dataset.y_test])),
        extra_images=len(extra[0]) if extra else 0,
        extra_sha256=array_sha256(np.concatenate([extra[0].ravel(), extra[1].astype(np.uint8)])) if extra else None,
    )
    return RunDescription(architecture, recipe.as_record(), seed, limit, train_images, fingerprint, init_from)


def environment() -> dict[str, str]:
    """Library versions, machine and commit: taken at the start, the code this run executes."""
    import keras
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "machine": platform.machine(),
        "processor_count": str(os.cpu_count()),
        # The weights depend on the thread count (oneDNN splits sums by thread): a `repeat --jobs` worker
        # runs on its share of the CPUs with one intra-op thread per CPU; 0 is TensorFlow's default.
        "cpus_used": str(len(os.sched_getaffinity(0))),
        "intra_op_threads": str(tf.config.threading.get_intra_op_parallelism_threads()),
        "git_commit": git_commit(),
    }


def git_commit() -> str:
    """HEAD of the checkout this code lives in, `-dirty` with uncommitted changes, `unknown` outside git."""
    here = Path(__file__).resolve().parent
    try:
        head = _git(["rev-parse", "HEAD"], here)
        dirty = _git(["status", "--porcelain", "--untracked-files=no"], here)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def _git(arguments: list[str], cwd: Path) -> str:
    return subprocess.run(
        ["git", *arguments], capture_output=True, text=True, check=True, timeout=5, cwd=cwd
    ).stdout.strip()
