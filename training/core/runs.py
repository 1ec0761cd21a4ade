"""Repeated runs of one recipe: `models/<name>/runs/<group>/<seed>/` with summary.json and metrics.json.

The evidence behind the comparison's statistics (`python -m training repeat` writes
them, the service reads them); no weights, and a recorded seed is never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training.core.artifacts import METRICS_FILE, SUMMARY_FILE, is_valid_name, model_path, write_record
from training.core.records import Metrics, Summary, read_record
from training.core.staging import staged_dir

RUNS_DIR = "runs"
CHECKPOINT_PREFIX = ".checkpoints-"


@dataclass(frozen=True)
class RunRecord:
    """One seed of a repeated run: what it measured, without the weights."""

    group: str  # The recipe variant, e.g. "epochs-15".
    seed: int
    summary: Summary
    metrics: Metrics


def list_runs(models_dir: Path, name: str) -> dict[str, list[int]]:
    """Run groups of a model and the seeds recorded in each."""
    folder = model_path(models_dir, name) / RUNS_DIR
    if not is_valid_name(name) or not folder.is_dir():
        return {}
    groups = {}
    for group in sorted(p for p in folder.iterdir() if p.is_dir() and is_valid_name(p.name)):
        seeds = sorted(int(p.name) for p in group.iterdir() if p.name.isdigit() and p.is_dir())
        if seeds:
            groups[group.name] = seeds
    return groups


def checkpoint_dir(models_dir: Path, name: str, group: str, seed: int) -> Path:
    """Per-epoch backups of one unfinished seed: its own folder, so that seeds can train side by side."""
    return model_path(models_dir, name) / RUNS_DIR / group / f"{CHECKPOINT_PREFIX}{seed}"


def load_run(models_dir: Path, name: str, group: str, seed: int) -> RunRecord:
    folder = model_path(models_dir, name) / RUNS_DIR / group / str(seed)
    return RunRecord(
        group, seed, read_record(folder, SUMMARY_FILE, Summary), read_record(folder, METRICS_FILE, Metrics)
    )


def save_run(models_dir: Path, name: str, group: str, seed: int, summary: Summary, metrics: Metrics) -> Path:
    """Record one seed of a run group atomically (staging folder, then one rename)."""
    if not (is_valid_name(name) and is_valid_name(group)):
        raise ValueError(f"invalid model or group name {name!r} / {group!r}")
    folder = model_path(models_dir, name) / RUNS_DIR / group
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / str(seed)
    with staged_dir(target, overwrite=False) as staging:  # A seed already recorded is never overwritten.
        write_record(staging, SUMMARY_FILE, summary)
        write_record(staging, METRICS_FILE, metrics)
    return target
