"""Multi-worker training: real worker processes on 127.0.0.1, configured by TF_CONFIG, as on a cluster."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.utils.data import REPO
from tests.utils.servers import free_port
from training import checkpoints
from training.core import artifacts
from training.distributed import Cluster, cluster_from_env

pytestmark = pytest.mark.distributed

# Dropout draws its masks per replica, so two workers do not reproduce one process bit for
# bit; the loss curves agree within this (measured: 0.03 after two epochs on the tiny data).
LOSS_TOLERANCE = 0.08


def _tf_config(ports: list[int], index: int) -> str:
    workers = [f"127.0.0.1:{port}" for port in ports]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def _start_cluster(store: Path, data: Path, epochs: int, logs: Path, **env: str) -> list[subprocess.Popen[bytes]]:
    ports = [free_port(), free_port()]
    command = [sys.executable, "-m", "training", "train", "model_1", "--distributed", "--epochs", str(epochs),
               "--data", str(data), "--models-dir", str(store)]  # fmt: skip
    processes = []
    for index in range(2):
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": _tf_config(ports, index), **env}
        log = (logs / f"worker{index}.log").open("w")
        processes.append(subprocess.Popen(command, cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT))
    return processes


def _epoch_lines(log: Path) -> list[str]:
    """Each epoch's log line without its timings (which differ between processes)."""
    lines = [line for line in log.read_text().splitlines() if line.startswith("Epoch ")]
    return [re.sub(r" - (train_)?seconds: [0-9.]+", "", line) for line in lines]


def test_tf_config_names_the_chief(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2], 1))
    assert cluster_from_env() == Cluster(2, "worker", 1)
    assert not Cluster(2, "worker", 1).is_chief and Cluster(2, "worker", 0).is_chief
    assert Cluster(3, "chief", 0, has_chief=True).is_chief and not Cluster(3, "worker", 0, has_chief=True).is_chief
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}, "task": {}}')
    with pytest.raises(ValueError, match="TF_CONFIG"):
        cluster_from_env()


def test_two_workers_publish_one_version_that_follows_the_single_process_curve(
    tiny_cifar_dir: Path, tmp_path: Path
) -> None:
    store = tmp_path / "models"
    workers = _start_cluster(store, tiny_cifar_dir, 2, tmp_path)
    codes = [worker.wait(timeout=300) for worker in workers]
    chief_log, worker_log = (tmp_path / "worker0.log").read_text(), (tmp_path / "worker1.log").read_text()
    assert codes == [0, 0], chief_log[-2000:] + worker_log[-2000:]
    assert "published" in chief_log and "this worker publishes nothing" in worker_log
    assert artifacts.list_versions(store, "model_1") == [1]
    artifact = artifacts.load_artifact(store / "model_1" / "1")
    assert [row["epoch"] for row in artifact.metrics.history] == [1, 2]
    assert not artifacts.checkpoint_dir(store, "model_1").exists()
    # Every copy applied the same all-reduced updates: the workers report identical numbers.
    assert _epoch_lines(tmp_path / "worker0.log") == _epoch_lines(tmp_path / "worker1.log")

    command = ["train", "model_1", "--epochs", "2", "--data", str(tiny_cifar_dir), "--models-dir", str(tmp_path / "s")]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    single = subprocess.run([sys.executable, "-m", "training", *command], cwd=REPO, capture_output=True, text=True,
                            env=environment)  # fmt: skip
    assert single.returncode == 0, single.stderr[-2000:]
    reference = artifacts.load_artifact(tmp_path / "s" / "model_1" / "1").metrics.history
    for distributed_row, single_row in zip(artifact.metrics.history, reference, strict=True):
        assert distributed_row["val_loss"] == pytest.approx(single_row["val_loss"], abs=LOSS_TOLERANCE)


def test_a_killed_worker_fails_the_run_cleanly_and_a_restart_resumes(tiny_cifar_dir: Path, tmp_path: Path) -> None:
    store = tmp_path / "models"
    first = tmp_path / "first"
    first.mkdir()
    chief, worker = _start_cluster(store, tiny_cifar_dir, 60, first, COLLECTIVE_TIMEOUT_SECONDS="20")
    history = artifacts.checkpoint_dir(store, "model_1") / checkpoints.HISTORY_FILE
    deadline = time.monotonic() + 240
    while not (history.is_file() and len(history.read_text().splitlines()) > 3):
        assert chief.poll() is None and time.monotonic() < deadline, (first / "worker0.log").read_text()[-2000:]
        time.sleep(0.1)
    worker.send_signal(signal.SIGKILL)
    started = time.monotonic()
    assert chief.wait(timeout=120) == 1
    print(f"the chief failed {time.monotonic() - started:.1f} s after the worker was killed")
    assert "a worker of the cluster stopped answering" in (first / "worker0.log").read_text()
    assert artifacts.list_versions(store, "model_1") == []

    second = tmp_path / "second"
    second.mkdir()
    codes = [process.wait(timeout=300) for process in _start_cluster(store, tiny_cifar_dir, 60, second)]
    assert codes == [0, 0], (second / "worker0.log").read_text()[-2000:]
    resumed = re.search(r"Resuming the distributed run after epoch (\d+)", (second / "worker0.log").read_text())
    assert resumed and int(resumed.group(1)) >= 3
    history_rows = artifacts.load_artifact(store / "model_1" / "1").metrics.history
    assert [row["epoch"] for row in history_rows] == list(range(1, 61))
