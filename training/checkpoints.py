"""Per-epoch backups of a run, so that an interrupted run resumes instead of starting over.

The backup lives in `models/<name>/.checkpoints/` (the store's layout says where)
and is discarded only after the version is published. Keras's BackupAndRestore deletes
its own backup when `fit` ends, so the fitted weights are saved here too: a run killed
during the final evaluation or while publishing resumes there, not at epoch 1.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import keras

from training.core.staging import staged_file
from training.provenance import RunDescription

HISTORY_FILE = "history.csv"
FITTED_WEIGHTS = "fitted.weights.h5"
RUN_FILE = "run.json"
BACKUP_DIR = "backup"


def prepare(folder: Path, run: RunDescription) -> Path:
    """Reuse the backup in `folder` of an interrupted identical run; start afresh for anything else."""
    run_file = folder / RUN_FILE
    described = run.as_json()
    if folder.exists():
        previous = json.loads(run_file.read_text()) if run_file.is_file() else None
        if previous == described:
            print(f"Resuming the interrupted run from {folder}", flush=True)
            return folder
        print(f"Discarding a backup of a different run in {folder}", flush=True)
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    run_file.write_text(json.dumps(described, indent=2))
    return folder


def callbacks(folder: Path) -> list[keras.callbacks.Callback]:
    """The per-epoch history log and the backup Keras restores from on a resumed run.

    The backup keeps the previous epoch's state too (`double_checkpoint`): a run killed while
    the weights file is being written (tests/reliability/test_kill_training.py found one)
    resumes from the epoch before instead of failing on a half-written file.
    """
    return [
        keras.callbacks.CSVLogger(str(folder / HISTORY_FILE), append=True),
        keras.callbacks.BackupAndRestore(str(folder / BACKUP_DIR), double_checkpoint=True),
    ]


def read_history(folder: Path) -> list[dict[str, int | float]]:
    """Per-epoch rows; an epoch repeated after a resume keeps its last (completed) row."""
    with (folder / HISTORY_FILE).open(newline="") as handle:
        rows = [{key: float(value) for key, value in row.items() if value != ""} for row in csv.DictReader(handle)]
    by_epoch: dict[int, dict[str, int | float]] = {}
    for row in rows:
        epoch = int(row["epoch"]) + 1  # Keras counts from 0; people count from 1.
        by_epoch[epoch] = {**row, "epoch": epoch}
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def save_fitted_weights(model: keras.Model, folder: Path) -> None:
    """Atomically: a half-written file would look like a finished run."""
    with staged_file(folder / FITTED_WEIGHTS) as temporary:  # Its name keeps the .weights.h5 Keras needs.
        model.save_weights(str(temporary))


def has_fitted_weights(folder: Path) -> bool:
    return (folder / FITTED_WEIGHTS).is_file()


def load_fitted_weights(model: keras.Model, folder: Path) -> None:
    model.load_weights(str(folder / FITTED_WEIGHTS))


def discard(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
