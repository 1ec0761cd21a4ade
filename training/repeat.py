"""Repeated runs of one recipe with different seeds: the spread behind any comparison.

`python -m training repeat model_2 --seeds 5 [--epochs 15] [--jobs 2]` trains seeds 0..4 and
records each as `models/<name>/runs/epochs-<E>/<seed>/` (metrics and layer summary, no weights).
Seeds already recorded are skipped, so asking for more seeds later only trains the new
ones, and an interrupted seed resumes from its own per-epoch backup like any training run.
With `--jobs N` the seeds train N at a time, each in a process pinned to its share of the
CPUs (`workers.py`): the cheap way to run many seeds of a small network.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from training import workers
from training.architectures import get_architecture
from training.core import runs, statistics
from training.train import TrainOptions, train


class SeedsFailed(RuntimeError):
    """Some seeds' worker processes failed; every other seed is recorded, and a rerun retries these."""


def group_name(epochs: int) -> str:
    return f"epochs-{epochs}"


def repeat(
    name: str, seeds: int, epochs: int | None, models_dir: Path, data: Path | None, jobs: int = 1
) -> list[float]:
    """Train the missing seeds of the group; returns every recorded seed's test accuracy.

    jobs=1 trains in this process on all its CPUs; jobs>1 in worker processes, one CPU share each.
    """
    workers.cpu_shares(jobs)  # Refuse an impossible --jobs before anything else.
    epochs = epochs or get_architecture(name).recipe.epochs
    group = group_name(epochs)
    recorded = set(runs.list_runs(models_dir, name).get(group, []))
    missing = []
    for seed in range(seeds):
        if seed in recorded:
            print(f"{name} {group} seed {seed}: already recorded", flush=True)
            continue
        print(f"{name} {group} seed {seed}: training", flush=True)
        missing.append(TrainOptions(name, models_dir=models_dir, data=data, epochs=epochs, seed=seed, run_group=group))
    if jobs == 1:
        for options in missing:
            train(options)
    else:
        fields = [dataclasses.asdict(dataclasses.replace(options, verbose=2)) for options in missing]
        failed = workers.train_side_by_side(fields, jobs)
        if failed:
            raise SeedsFailed(f"{name} {group}: seeds {failed} failed; run the same command again to retry them")
    accuracies = [
        runs.load_run(models_dir, name, group, seed).metrics.test_accuracy
        for seed in runs.list_runs(models_dir, name)[group]
    ]
    summary = statistics.spread(accuracies)
    interval = f", 95% CI {summary.ci_low:.2%} to {summary.ci_high:.2%}" if summary.ci_low is not None else ""
    print(f"{name} {group}: {summary.n} seeds, test accuracy {summary.mean:.2%} +- {summary.sd:.2%} (sd){interval}")
    return accuracies
