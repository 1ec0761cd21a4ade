"""Shared fixtures: a tiny CIFAR-10 in the official layout, and a tiny trained model store."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

from tests.utils.data import TINY_HOLDOUT, write_tiny_cifar

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# gRPC stays off in the apps and servers tests start; the gRPC tests give each server a free port.
os.environ.setdefault("GRPC_PORT", "0")
# The prediction log of every app and server the tests start: one SQLite file of this session, never ./data.
os.environ.setdefault("MONITORING_DB", f"sqlite:///{tempfile.mkdtemp(prefix='cifar10-tests-')}/monitoring.db")


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


def built_once(name: str, build: Callable[[Path], object], factory: pytest.TempPathFactory) -> Path:
    """A session's fixture store, trained by one process only: under pytest-xdist (`make test-fast`) the
    workers share their base folder's parent, the first to take the lock builds, the others wait for it and
    reuse it. The stores are read-only to tests (`store_copy` gives a writable copy)."""
    root = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    store, done = root / name, root / f"{name}.done"
    with FileLock(root / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(store, ignore_errors=True)
            store.mkdir()
            build(store)
            done.touch()
    return store


@pytest.fixture(scope="session")
def tiny_store(tiny_cifar_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model store with model_1 trained for one epoch on the tiny data (version 1)."""
    from training.train import TrainOptions, train

    def build(store: Path) -> None:
        train(TrainOptions("model_1", models_dir=store, data=tiny_cifar_dir, epochs=1, verbose=0))

    return built_once("store", build, tmp_path_factory)


@pytest.fixture(scope="session")
def quantized_store(tiny_cifar_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model_1 trained one epoch on the tiny data with a hold-out (version 1), then quantized (version 2)."""
    from training.quantize import quantize_version
    from training.train import TrainOptions, train

    def build(store: Path) -> None:
        options = TrainOptions("model_1", store, tiny_cifar_dir, epochs=1, calibration_holdout=TINY_HOLDOUT, verbose=0)
        source = train(options)
        assert source is not None
        quantize_version(source, store, tiny_cifar_dir)

    return built_once("quantized-store", build, tmp_path_factory)


@pytest.fixture(scope="session")
def novelty_store(quantized_store: Path, tiny_cifar_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model_1 v1 of the quantized store (hold-out, no score), v2 = v1 with a novelty score, v3 = v2 in int8."""
    from training.novelty import add_novelty
    from training.quantize import quantize_version

    def build(store: Path) -> None:
        shutil.copytree(quantized_store / "model_1" / "1", store / "model_1" / "1")
        scored = add_novelty(store / "model_1" / "1", store, tiny_cifar_dir)
        quantize_version(scored, store, tiny_cifar_dir)

    return built_once("novelty-store", build, tmp_path_factory)


@pytest.fixture
def store_copy(tiny_store: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the tiny store for tests that add or break versions."""
    target = tmp_path / "models"
    shutil.copytree(tiny_store, target)
    return target
