"""Shared fixtures: a tiny CIFAR-10 in the official layout, and the tiny model stores built from it."""

from __future__ import annotations

import gc
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

from tests.utils import stores
from tests.utils.data import write_tiny_cifar

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


def session_folder(factory: pytest.TempPathFactory) -> Path:
    """The session's temporary folder, one for all pytest-xdist workers (`make test-fast`): their base
    folders' parent."""
    root = factory.getbasetemp()
    return root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Archive extraction goes to the session's cache (the real CIFAR-10 is extracted once for all
    workers), never to the user's."""
    from training import data

    monkeypatch.setattr(data, "EXTRACT_CACHE", session_folder(tmp_path_factory) / "extract-cache")


def built_once(name: str, build: Callable[[Path], object], factory: pytest.TempPathFactory) -> Path:
    """A session's fixture folder, built by one process only: the first worker to take the lock builds,
    the others wait for it and reuse it."""
    root = session_folder(factory)
    store, done = root / name, root / f"{name}.done"
    with FileLock(root / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(store, ignore_errors=True)
            store.mkdir()
            build(store)
            done.touch()
    return store


def pytest_collection_finish(session: pytest.Session) -> None:
    """Take what collection imported (TensorFlow, Keras, OpenVINO: ~500,000 objects that live as long as
    the process) out of the garbage collector's sight, as the service does once its models are loaded.
    Tracing a graph allocates enough to trigger full collections, and each walked all of those objects
    again: ~25% of a publishing test's CPU (perf; docs/benchmarks.md, stop 45)."""
    gc.collect()
    gc.freeze()


def pytest_report_header() -> str:
    if stores.committed_is_current():
        return f"fixture stores: {stores.COMMITTED.relative_to(stores.REPO)} (current)"
    return "fixture stores: stale, trained in this session first (`make fixtures` rebuilds the committed ones)"


@pytest.fixture(scope="session")
def fixture_stores(tiny_cifar_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed stores when this code is what built them (tests/utils/stores.py), else built once here."""
    if stores.committed_is_current():
        return stores.committed()
    return built_once("stores", lambda root: stores.build_all(root, tiny_cifar_dir), tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_store(fixture_stores: Path) -> Path:
    """model_1 trained for one epoch on the tiny data (version 1). Read-only: see `store_copy`."""
    return fixture_stores / "tiny"


@pytest.fixture(scope="session")
def quantized_store(fixture_stores: Path) -> Path:
    """model_1 trained one epoch on the tiny data with a hold-out (version 1), then quantized (version 2)."""
    return fixture_stores / "quantized"


@pytest.fixture(scope="session")
def novelty_store(fixture_stores: Path) -> Path:
    """model_1 v1 of the quantized store (hold-out, no score), v2 = v1 with a novelty score, v3 = v2 in int8."""
    return fixture_stores / "novelty"


@pytest.fixture(scope="session")
def calibrated_store(fixture_stores: Path) -> Path:
    """model_1 v1 of the quantized store (hold-out), recalibrated by `training.calibrate`: v2 as published,
    v3 with the temperature also fitted on a damaged copy of the hold-out, v4 with two views (hflip)."""
    return fixture_stores / "calibrated"


@pytest.fixture
def store_copy(tiny_store: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the tiny store for tests that add or break versions."""
    target = tmp_path / "models"
    shutil.copytree(tiny_store, target)
    return target
