"""The model store: `models/<name>/<version>/`, the one module that knows its layout.

TensorFlow Serving's convention: a folder per model, integer version folders
inside, the highest version is the newest. A version is written into a hidden
staging folder beside the versions and renamed into place only once every file
is there, so a reader (the service polls this folder) never sees half a version.
Training and the service both import this module; nobody else builds these paths.

Each version holds:
    model.keras     the trained Keras model, without optimizer state
    metadata.json   what a server needs: input shape and dtype, scaling, classes, ...
    summary.json    the layer table of `model.summary()` and parameter counts
    metrics.json    per-epoch history, test results, timings, hyperparameters
    curves.png      loss and accuracy per epoch (training vs validation)
    confusion.png   the test-set confusion matrix
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.json"
CURVES_FILE = "curves.png"
CONFUSION_FILE = "confusion.png"
ARTIFACT_FILES = (MODEL_FILE, METADATA_FILE, SUMMARY_FILE, METRICS_FILE, CURVES_FILE, CONFUSION_FILE)
PLOT_FILES = (CURVES_FILE, CONFUSION_FILE)
STAGING_PREFIX = ".tmp-"
CHECKPOINTS_DIR = ".checkpoints"

# Names become folder names: no separators, no dots in front, nothing a URL could smuggle.
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class ArtifactNotFound(LookupError):
    """No such model or version in the store."""


def is_valid_name(name: str) -> bool:
    return bool(_NAME_PATTERN.fullmatch(name))


def list_models(models_dir: Path) -> list[str]:
    """Names of models with at least one complete version."""
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir() if is_valid_name(p.name) and list_versions(models_dir, p.name))


def list_versions(models_dir: Path, name: str) -> list[int]:
    """Complete versions of `name`, oldest first (staging folders are not versions)."""
    folder = models_dir / name
    if not is_valid_name(name) or not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and p.is_dir())


def version_dir(models_dir: Path, name: str, version: int | None = None) -> Path:
    """The folder of `name` at `version` (newest when None); raises ArtifactNotFound."""
    versions = list_versions(models_dir, name)
    if not versions:
        raise ArtifactNotFound(f"model {name!r} not found")
    if version is None:
        version = versions[-1]
    if version not in versions:
        raise ArtifactNotFound(f"model {name!r} has no version {version} (versions: {versions})")
    return models_dir / name / str(version)


def read_json(folder: Path, filename: str) -> dict[str, Any]:
    with (folder / filename).open(encoding="utf-8") as handle:
        return json.load(handle)


def write_json(folder: Path, filename: str, content: dict[str, Any]) -> None:
    with (folder / filename).open("w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=2, sort_keys=False)
        handle.write("\n")


def checkpoint_dir(models_dir: Path, name: str) -> Path:
    """Where an unfinished run keeps its per-epoch backups so it can resume."""
    return models_dir / name / CHECKPOINTS_DIR


class StagedVersion:
    """A version being written: files go into `path`; `published` is set once it is in place."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.published: Path | None = None


@contextmanager
def new_version(models_dir: Path, name: str) -> Iterator[StagedVersion]:
    """Yield an empty staging folder; on success it becomes the next version.

    On any exception (Ctrl-C included) the staging folder is deleted, so nothing
    partial is ever visible. The version number is chosen at commit time, so two
    concurrent runs get distinct versions.
    """
    if not is_valid_name(name):
        raise ValueError(f"invalid model name {name!r}")
    folder = models_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    staged = StagedVersion(folder / f"{STAGING_PREFIX}{os.getpid()}-{os.urandom(4).hex()}")
    staged.path.mkdir()
    try:
        yield staged
        missing = [f for f in ARTIFACT_FILES if not (staged.path / f).is_file()]
        if missing:
            raise RuntimeError(f"refusing to publish an incomplete version, missing {missing}")
        staged.published = _publish(staged.path, folder)
    finally:
        shutil.rmtree(staged.path, ignore_errors=True)


def _publish(staging: Path, folder: Path) -> Path:
    """Rename the staging folder to the next free version number.

    rename(2) onto a missing or empty folder is atomic; onto a non-empty one it
    fails, which means another run took that number first, so try the next.
    """
    metadata = read_json(staging, METADATA_FILE)
    for _ in range(100):
        versions = [int(p.name) for p in folder.iterdir() if p.name.isdigit()]
        target = folder / str(max(versions, default=0) + 1)
        metadata["version"] = int(target.name)
        write_json(staging, METADATA_FILE, metadata)
        try:
            os.rename(staging, target)
        except OSError:
            continue
        return target
    raise RuntimeError(f"could not claim a version number in {folder}")
