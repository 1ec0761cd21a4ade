"""`python -m training repeat`: one record per seed, resumable and cheap to extend."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from training import workers
from training.core import artifacts, runs
from training.repeat import repeat


def test_repeat_records_each_seed_once_and_extends(tiny_cifar_dir: Path, tmp_path: Path, capsys) -> None:
    first = repeat("model_1", seeds=1, epochs=1, models_dir=tmp_path, data=tiny_cifar_dir)
    assert runs.list_runs(tmp_path, "model_1") == {"epochs-1": [0]}
    assert artifacts.list_versions(tmp_path, "model_1") == []  # Runs are records, not served versions.
    assert not (tmp_path / "model_1" / "runs" / "epochs-1" / "0" / "model.keras").exists()

    capsys.readouterr()
    extended = repeat("model_1", seeds=2, epochs=1, models_dir=tmp_path, data=tiny_cifar_dir)
    output = capsys.readouterr().out
    assert "seed 0: already recorded" in output and "seed 1: training" in output
    assert extended[:1] == first and len(extended) == 2
    record = runs.load_run(tmp_path, "model_1", "epochs-1", 1)
    assert record.metrics.hyperparameters["seed"] == 1 and record.metrics.test_accuracy == extended[1]


def test_cpu_shares_split_the_cpus_without_overlap() -> None:
    cpus = os.sched_getaffinity(0)
    shares = workers.cpu_shares(len(cpus))
    assert len(shares) == len(cpus) and frozenset().union(*shares) == cpus and all(len(s) == 1 for s in shares)
    assert workers.cpu_shares(1) == [frozenset(cpus)]
    with pytest.raises(ValueError, match="--jobs"):
        workers.cpu_shares(len(cpus) + 1)


def test_repeat_refuses_more_jobs_than_cpus_before_training(tiny_cifar_dir: Path, tmp_path: Path, capsys) -> None:
    too_many = len(os.sched_getaffinity(0)) + 1
    with pytest.raises(ValueError, match="--jobs"):
        repeat("model_1", seeds=2, epochs=1, models_dir=tmp_path, data=tiny_cifar_dir, jobs=too_many)
    assert "training" not in capsys.readouterr().out and not (tmp_path / "model_1").exists()


@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_seeds_trained_side_by_side_match_the_same_seed_trained_alone(tiny_cifar_dir: Path, tmp_path: Path) -> None:
    """--jobs 2: two pinned worker processes; a seed's record must not depend on what trained beside it."""
    side_by_side, alone = tmp_path / "side-by-side", tmp_path / "alone"
    repeat("model_1", seeds=2, epochs=2, models_dir=side_by_side, data=tiny_cifar_dir, jobs=2)
    assert runs.list_runs(side_by_side, "model_1") == {"epochs-2": [0, 1]}
    assert not list((side_by_side / "model_1" / "runs" / "epochs-2").glob(".*"))  # Backups and staging gone.

    recorded = side_by_side / "model_1" / "runs" / "epochs-2"
    shutil.copytree(recorded / "0", alone / "model_1" / "runs" / "epochs-2" / "0")
    repeat("model_1", seeds=2, epochs=2, models_dir=alone, data=tiny_cifar_dir, jobs=2)  # Seed 1 alone now.
    beside, by_itself = (runs.load_run(store, "model_1", "epochs-2", 1).metrics for store in (side_by_side, alone))
    untimed = [[{k: v for k, v in row.items() if "second" not in k} for row in m.history] for m in (beside, by_itself)]
    assert untimed[0] == untimed[1] and by_itself.test_accuracy == beside.test_accuracy
    assert beside.environment["intra_op_threads"] == "1" and beside.environment["cpus_used"] == "1"
