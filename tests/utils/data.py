"""Where things are, and a tiny CIFAR-10 in the official layout for fast, real training runs."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from training.core.classes import CLASS_NAMES as _CLASS_NAMES

REPO = Path(__file__).resolve().parents[2]
SHARED_ARCHIVE = REPO.parent / "shared" / "datasets" / "cifar-10-python.tar.gz"
COMMITTED_MODELS = REPO / "models"
SAMPLES = REPO / "app" / "static" / "samples"
TINY_TRAIN_PER_BATCH = 40  # 5 batches: 200 training images.
TINY_TEST = 50
TINY_HOLDOUT = 40  # Training images the quantized tiny store's model held out (tests/conftest.py).
CLASS_NAMES = list(_CLASS_NAMES)


def _tiny_batch(rng: np.random.Generator, count: int) -> dict[bytes, object]:
    """Images whose mean colour depends on the label, so a short training can learn something."""
    labels = np.arange(count) % 10
    rng.shuffle(labels)
    base = (labels[:, None] * 25).astype(np.int16)
    data = np.clip(base + rng.integers(-20, 20, size=(count, 3072)), 0, 255).astype(np.uint8)
    return {
        b"batch_label": b"tiny",
        b"labels": labels.tolist(),
        b"data": data,
        b"filenames": [f"img_{i}.png".encode() for i in range(count)],
    }


def write_tiny_cifar(root: Path) -> Path:
    """Write `root/cifar-10-batches-py/` exactly as the official pickles are laid out."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(1, 6):
        _dump(folder / f"data_batch_{index}", _tiny_batch(rng, TINY_TRAIN_PER_BATCH))
    _dump(folder / "test_batch", _tiny_batch(rng, TINY_TEST))
    meta = {
        b"label_names": [name.encode() for name in CLASS_NAMES],
        b"num_cases_per_batch": TINY_TRAIN_PER_BATCH,
        b"num_vis": 3072,
    }
    _dump(folder / "batches.meta", meta)
    return folder


def _dump(path: Path, content: dict[bytes, object]) -> None:
    with path.open("wb") as handle:
        pickle.dump(content, handle, protocol=4)


def real_archive_or_skip() -> Path:
    """The real CIFAR-10: $CIFAR10_DATA if set, else ../shared/datasets/cifar-10-python.tar.gz."""
    path = Path(os.environ.get("CIFAR10_DATA") or SHARED_ARCHIVE)
    if not path.exists():
        pytest.skip(f"the real dataset is not at {path}")
    return path
