"""Per-epoch backups of a run, so that an interrupted run resumes instead of starting over.

The backup lives in `models/<name>/.checkpoints/` (the store's layout says where)
and is discarded only after the version is published. After each epoch the weights (and
the optimizer's state) are written whole, `backup/epoch-<N>.weights.h5` through a staged
write (flushed to disk, then renamed), and the previous epoch's file is kept until the new
one is complete: a run killed mid-write, or a disk that fills up, never leaves a backup that
only looks complete. On resume a backup that does not load is set aside (renamed
`*.broken`, and said), and the run resumes from the one before it, or starts over.
The fitted weights are saved here too once `fit` ends: a run killed during the final
evaluation or while publishing resumes there, not at epoch 1.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import keras
import numpy as np

from training.core.staging import set_aside, staged_file
from training.provenance import RunDescription

HISTORY_FILE = "history.csv"
FITTED_WEIGHTS = "fitted.weights.h5"
RUN_FILE = "run.json"
BACKUP_DIR = "backup"
BACKUP_SUFFIX = ".weights.h5"  # Keras needs it in the name.
BROKEN_SUFFIX = ".broken"  # A backup that does not load is renamed so, kept for a post-mortem.


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
    """The per-epoch history log and the backup a resumed run restores from."""
    return [keras.callbacks.CSVLogger(str(folder / HISTORY_FILE), append=True), EpochBackup(folder / BACKUP_DIR)]


class BackupFailed(OSError):
    """An epoch's backup could not be written (a full disk): the run stops, the previous backup intact."""


class EpochBackup(keras.callbacks.Callback):
    """Restores the newest backup that loads when training begins; writes one after every epoch."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        epochs_done = restore(self.model, self.folder)
        if epochs_done:
            self.model._initial_epoch = epochs_done  # Where Keras's own BackupAndRestore tells fit to start.

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        save(self.model, self.folder, epoch + 1)


def save(model: keras.Model, folder: Path, epochs_done: int) -> None:
    """Write the backup after `epochs_done` epochs whole, then drop all but it and the one before.

    The free space is checked first: HDF5 hit by a full disk mid-write leaves a file handle that
    crashes the interpreter when it is collected (a segfault at exit), so a backup that cannot fit
    is never started. A disk that fills up during the write still ends in BackupFailed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    needed, free = _bytes_needed(model, folder), shutil.disk_usage(folder).free
    if free < needed:
        raise BackupFailed(
            f"cannot write the backup of epoch {epochs_done} in {folder}: No space left on device ({free} bytes "
            f"free, about {needed} needed); the previous backup is intact: free some space and run the same "
            "command to resume"
        )
    try:
        with staged_file(folder / f"epoch-{epochs_done:04d}{BACKUP_SUFFIX}") as temporary:
            model.save_weights(str(temporary))
    except OSError as error:
        raise BackupFailed(
            f"cannot write the backup of epoch {epochs_done} in {folder} ({error.strerror or error}); "
            "the previous backup is intact: free some space and run the same command to resume"
        ) from error
    for old in _backups(folder)[:-2]:
        old.unlink(missing_ok=True)


def _bytes_needed(model: keras.Model, folder: Path) -> int:
    """The size of the newest backup, or of the weights and optimizer state, with a margin for HDF5's layout."""
    backups = _backups(folder)
    if backups:
        size = backups[-1].stat().st_size
    else:
        optimizer = list(model.optimizer.variables) if model.optimizer is not None else []
        size = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in [*model.weights, *optimizer])
    return int(size * 1.1) + 256 * 1024


def restore(model: keras.Model, folder: Path) -> int:
    """Load the newest backup that loads; returns the epochs it holds (0: none, start over)."""
    for backup in reversed(_backups(folder)):
        try:
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)  # Its variables must exist to be loaded.
            model.load_weights(str(backup))
        except Exception as error:  # h5py reports a damaged file as OSError, KeyError, ValueError, ...
            broken = set_aside(backup, BROKEN_SUFFIX)
            print(
                f"The backup {backup.name} does not load ({type(error).__name__}: {error}); set aside as {broken.name}",
                flush=True,
            )
            continue
        epochs_done = int(backup.name.removeprefix("epoch-").removesuffix(BACKUP_SUFFIX))
        print(f"Resuming after epoch {epochs_done} from {backup.name}", flush=True)
        return epochs_done
    if any(folder.glob(f"*{BACKUP_SUFFIX}{BROKEN_SUFFIX}")):
        print("No backup loads: training starts over from epoch 1", flush=True)
    return 0


def _backups(folder: Path) -> list[Path]:
    """Complete backups, oldest first (staged writes in progress have a hidden name)."""
    return sorted(folder.glob(f"epoch-*{BACKUP_SUFFIX}")) if folder.is_dir() else []


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
