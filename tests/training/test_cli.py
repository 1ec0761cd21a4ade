"""`python -m training` in real subprocesses: next versions, Ctrl-C and resume, clear failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.utils.data import REPO
from training.core import artifacts

pytestmark = pytest.mark.slow


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "training", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_cli(*args), capture_output=True, text=True, env=_env(), timeout=timeout)


def test_second_run_writes_the_next_version(store_copy: Path, tiny_cifar_dir: Path) -> None:
    common = ("train", "model_2", "--epochs", "1", "--limit", "100", "--data", str(tiny_cifar_dir))
    first = _run_cli(*common, "--models-dir", str(store_copy))
    assert first.returncode == 0, first.stderr
    assert f"published {store_copy / 'model_2' / '1'}" in first.stdout
    second = _run_cli(*common, "--models-dir", str(store_copy), "--seed", "1", "--jpeg-fraction", "0.3")
    assert second.returncode == 0, second.stderr
    assert artifacts.list_versions(store_copy, "model_2") == [1, 2]
    second_version = artifacts.load_artifact(store_copy / "model_2" / "2")
    assert second_version.metadata.version == 2
    assert second_version.metrics.hyperparameters["seed"] == 1
    assert second_version.metrics.hyperparameters["jpeg_fraction"] == 0.3


def test_interrupted_run_leaves_no_version_and_resumes(tmp_path: Path, tiny_cifar_dir: Path) -> None:
    store = tmp_path / "models"
    command = _cli("train", "model_1", "--epochs", "40", "--data", str(tiny_cifar_dir), "--models-dir", str(store))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    history = artifacts.checkpoint_dir(store, "model_1") / "history.csv"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (history.is_file() and len(history.read_text().splitlines()) >= 3):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)  # Ctrl-C after at least two finished epochs.
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "no version was published" in stderr
    assert artifacts.list_versions(store, "model_1") == []
    assert not [p for p in (store / "model_1").iterdir() if p.name.startswith(artifacts.STAGING_PREFIX)]

    finished = _run_cli(*command[3:])
    assert finished.returncode == 0, finished.stderr
    assert "Resuming" in finished.stdout
    metrics = artifacts.load_artifact(store / "model_1" / "1").metrics
    assert [row["epoch"] for row in metrics.history] == list(range(1, 41))
    assert not artifacts.checkpoint_dir(store, "model_1").exists()


def test_bad_arguments_and_missing_data_fail_clearly(tmp_path: Path) -> None:
    bad_epochs = _run_cli("train", "model_1", "--epochs", "0")
    assert bad_epochs.returncode == 2 and "--epochs must be at least 1" in bad_epochs.stderr
    bad_share = _run_cli("train", "model_1", "--jpeg-fraction", "1.5")
    assert bad_share.returncode == 2 and "--jpeg-fraction must be between 0 and 1" in bad_share.stderr
    bad_rate = _run_cli("train", "model_1", "--learning-rate", "0")
    assert bad_rate.returncode == 2 and "--learning-rate must be above 0" in bad_rate.stderr
    missing = _run_cli("train", "model_1", "--data", str(tmp_path / "absent"), "--models-dir", str(tmp_path))
    assert missing.returncode == 1 and "CIFAR10_DATA" in missing.stderr
    too_many_jobs = _run_cli("repeat", "model_1", "--jobs", str(len(os.sched_getaffinity(0)) + 1))
    assert too_many_jobs.returncode == 2 and "--jobs must be between 1 and" in too_many_jobs.stderr
    assert "training" not in too_many_jobs.stdout
