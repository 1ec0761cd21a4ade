"""`python -m training repeat`: one record per seed, resumable and cheap to extend."""

from __future__ import annotations

from pathlib import Path

from training.core import artifacts, runs
from training.repeat import repeat


def test_repeat_records_each_seed_once_and_extends(tiny_cifar_dir: Path, tmp_path: Path, capsys) -> None:
    first = repeat("model_1", seeds=2, epochs=1, models_dir=tmp_path, data=tiny_cifar_dir)
    assert runs.list_runs(tmp_path, "model_1") == {"epochs-1": [0, 1]}
    assert artifacts.list_versions(tmp_path, "model_1") == []  # Runs are records, not served versions.
    record = runs.load_run(tmp_path, "model_1", "epochs-1", 1)
    assert record.metrics.hyperparameters["seed"] == 1 and record.metrics.test_accuracy == first[1]
    assert not (tmp_path / "model_1" / "runs" / "epochs-1" / "0" / "model.keras").exists()

    capsys.readouterr()
    extended = repeat("model_1", seeds=3, epochs=1, models_dir=tmp_path, data=tiny_cifar_dir)
    output = capsys.readouterr().out
    assert "seed 0: already recorded" in output and "seed 1: already recorded" in output
    assert "seed 2: training" in output
    assert extended[:2] == first and len(extended) == 3
