"""A full disk during training ends the run with one clear line, and never leaves the store or its
backups unusable: tested for real on a small tmpfs (skipped, with the reason, where mounting is not allowed;
REQUIRE_MOUNT=1, set by .ci/run, makes that a failure)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.utils.data import REPO
from training import checkpoints
from training.core import artifacts

pytestmark = pytest.mark.reliability


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2.5 MB tmpfs: room for one epoch backup of model_1 (1.4 MB with RMSprop's state), not two."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2500k", "tmpfs", str(mount_point)], capture_output=True
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs here: {mounted.stderr.decode().strip() or mounted.returncode}"
        if os.environ.get("REQUIRE_MOUNT") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _train(store: Path, data: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "training", "train", "model_1", "--epochs", "3", "--data", str(data),
               "--models-dir", str(store)]  # fmt: skip
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=600)


def _grow(mount_point: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mount_point)], check=True)


def test_a_full_disk_ends_the_run_cleanly_and_the_rerun_resumes(small_disk: Path, tiny_cifar_dir: Path) -> None:
    store = small_disk / "models"
    failed = _train(store, tiny_cifar_dir)
    assert failed.returncode == 74, (failed.returncode, failed.stderr[-2000:])  # Not 139 (a segfault).
    last_line = failed.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: cannot write the backup of epoch 2") and "No space left" in last_line
    assert "Traceback" not in failed.stderr
    backups = artifacts.checkpoint_dir(store, "model_1") / checkpoints.BACKUP_DIR
    assert [path.name for path in backups.iterdir()] == ["epoch-0001.weights.h5"], "only complete backups are left"
    assert artifacts.list_versions(store, "model_1") == []

    _grow(small_disk, "200m")
    rerun = _train(store, tiny_cifar_dir)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "Resuming after epoch 1 from epoch-0001.weights.h5" in rerun.stdout
    assert artifacts.list_versions(store, "model_1") == [1]
    artifacts.load_artifact(store / "model_1" / "1")


def test_a_backup_that_does_not_load_is_set_aside(tmp_path: Path) -> None:
    """What a full disk left before this round: a truncated newest backup that every rerun tried to load.
    Now it is renamed `.broken`, the run resumes from the one before it, or starts over if none loads."""
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer="rmsprop", loss="mse")
    model.fit(np.zeros((8, 4)), np.zeros((8, 3)), verbose=0)  # The optimizer's state exists.
    folder = tmp_path / "backup"
    checkpoints.save(model, folder, 1)
    checkpoints.save(model, folder, 2)
    newest = folder / "epoch-0002.weights.h5"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])

    assert checkpoints.restore(model, folder) == 1
    assert sorted(path.name for path in folder.iterdir()) == ["epoch-0001.weights.h5", "epoch-0002.weights.h5.broken"]
    only = folder / "epoch-0001.weights.h5"
    only.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    assert checkpoints.restore(model, folder) == 0, "nothing loads: start over"
    assert not list(folder.glob("*.weights.h5"))
