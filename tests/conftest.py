"""Shared fixtures: a tiny CIFAR-10 in the official layout, and a tiny trained model store."""

from __future__ import annotations

import os
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from training import classes

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
SHARED_ARCHIVE = REPO.parent / "shared" / "datasets" / "cifar-10-python.tar.gz"
COMMITTED_MODELS = REPO / "models"
TINY_TRAIN_PER_BATCH = 40  # 5 batches: 200 training images.
TINY_TEST = 50
CLASS_NAMES = list(classes.CLASS_NAMES)


def _tiny_batch(rng: np.random.Generator, count: int) -> dict:
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


def _dump(path: Path, content: dict) -> None:
    with path.open("wb") as handle:
        pickle.dump(content, handle, protocol=4)


@pytest.fixture(scope="session")
def tiny_cifar_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_cifar(tmp_path_factory.mktemp("tiny-cifar"))


@pytest.fixture(scope="session")
def tiny_cifar_archive(tiny_cifar_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    archive = tmp_path_factory.mktemp("tiny-archive") / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tiny_cifar_dir, arcname="cifar-10-batches-py")
    return archive


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Archive extraction goes to a per-session cache, never to the user's."""
    from training import data

    monkeypatch.setattr(data, "EXTRACT_CACHE", tmp_path_factory.getbasetemp() / "extract-cache")


@pytest.fixture(scope="session")
def tiny_store(tiny_cifar_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model store with model_1 trained for one epoch on the tiny data (version 1)."""
    from training.train import TrainOptions, train

    store = tmp_path_factory.mktemp("store")
    train(TrainOptions("model_1", models_dir=store, data=tiny_cifar_dir, epochs=1, verbose=0))
    return store


@pytest.fixture
def store_copy(tiny_store: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the tiny store for tests that add or break versions."""
    target = tmp_path / "models"
    shutil.copytree(tiny_store, target)
    return target


def real_archive_or_skip() -> Path:
    """The real CIFAR-10: $CIFAR10_DATA if set, else ../shared/datasets/cifar-10-python.tar.gz."""
    path = Path(os.environ.get("CIFAR10_DATA") or SHARED_ARCHIVE)
    if not path.exists():
        pytest.skip(f"the real dataset is not at {path}")
    return path


def numpy_tta(model: object, inputs: np.ndarray, tta: str) -> np.ndarray:
    """Test-time augmentation written independently of training.inference, in NumPy, as the reference."""

    def mirrored(images: np.ndarray) -> np.ndarray:
        return (model.predict(images, verbose=0) + model.predict(images[:, :, ::-1], verbose=0)) / 2

    if tta == "none":
        return model.predict(inputs, verbose=0)
    if tta == "hflip":
        return mirrored(inputs)
    assert tta == "hflip_translate"
    padded = np.pad(inputs, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    shifted = (mirrored(padded[:, :32, :32]) + mirrored(padded[:, 2:, 2:])) / 2
    return (mirrored(inputs) + shifted) / 2
