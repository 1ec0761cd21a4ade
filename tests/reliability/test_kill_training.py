"""kill -9 a real training run at each of its stages: never a partial version, always resumable.

The stage is observed, not injected: after an epoch (the backup's history grows), during
the final evaluation (the fitted weights are saved, nothing is staged yet) and while
publishing (a staging folder exists in the store). The rerun of the same command must
pick up where the killed one was and publish one complete version.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.utils.data import REPO
from training import checkpoints
from training.core import artifacts

pytestmark = pytest.mark.reliability

EPOCHS = 6


def _epochs_done(store: Path) -> int:
    history = artifacts.checkpoint_dir(store, "model_1") / checkpoints.HISTORY_FILE
    return max(0, len(history.read_text().splitlines()) - 1) if history.is_file() else 0


def _evaluating(store: Path) -> bool:
    return checkpoints.has_fitted_weights(artifacts.checkpoint_dir(store, "model_1")) and not _publishing(store)


def _publishing(store: Path) -> bool:
    folder = store / "model_1"
    return folder.is_dir() and any(p.name.startswith(artifacts.STAGING_PREFIX) for p in folder.iterdir())


STAGES: dict[str, tuple[Callable[[Path], bool], str]] = {
    # Stage -> (when to kill, what the rerun must say).
    "after epoch 2": (lambda store: _epochs_done(store) >= 2, "Resuming"),
    "during the final evaluation": (_evaluating, "Training had finished"),
    "while publishing": (_publishing, "left by a run that was killed while publishing"),
}


def _command(store: Path, data: Path) -> list[str]:
    return [sys.executable, "-m", "training", "train", "model_1", "--epochs", str(EPOCHS), "--data", str(data),
            "--models-dir", str(store)]  # fmt: skip


def _complete_versions(store: Path) -> list[int]:
    """Every version the store lists must load completely; returns them."""
    versions = artifacts.list_versions(store, "model_1")
    for version in versions:
        artifacts.load_artifact(store / "model_1" / str(version))  # Raises on anything partial.
    return versions


@pytest.mark.parametrize("stage", list(STAGES))
def test_kill_9_never_leaves_a_partial_version_and_the_rerun_resumes(
    stage: str, tiny_cifar_dir: Path, tmp_path: Path
) -> None:
    store = tmp_path / "models"
    reached, resumed_message = STAGES[stage]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with (tmp_path / "killed.log").open("w") as log:
        process = subprocess.Popen(_command(store, tiny_cifar_dir), cwd=REPO, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 300
        while not reached(store):
            assert process.poll() is None, f"the run ended before {stage}: {(tmp_path / 'killed.log').read_text()}"
            assert time.monotonic() < deadline, f"never reached {stage}"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    print(f"killed {stage}: {_epochs_done(store)} epochs in the backup")

    assert _complete_versions(store) == []  # Nothing, or something whole: here the kill came before the rename.

    rerun = subprocess.run(_command(store, tiny_cifar_dir), cwd=REPO, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert resumed_message in rerun.stdout
    assert _complete_versions(store) == [1]
    history = artifacts.load_artifact(store / "model_1" / "1").metrics.history
    assert [row["epoch"] for row in history] == list(range(1, EPOCHS + 1))
    assert not artifacts.checkpoint_dir(store, "model_1").exists()
    assert not _publishing(store)
