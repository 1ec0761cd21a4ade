"""The model store format: `models/<name>/<version>/`, written and read only through this module.

TensorFlow Serving's convention: a folder per model, integer version folders
inside, the highest version is the newest. A version is written into a hidden
staging folder beside the versions and renamed into place only once every file
is there, so a reader (the service polls this folder) never sees half a version.

Each version holds:
    model.keras     the trained Keras model, without optimizer state
    metadata.json   `Metadata`: what a server needs (input, scaling, classes, accuracy)
    summary.json    `Summary`: the layer table of `model.summary()` and parameter counts
    metrics.json    `Metrics`: per-epoch history, test results, timings, hyperparameters
    curves.png      loss and accuracy per epoch (training vs validation)
    confusion.png   the test-set confusion matrix
    calibration.png the reliability diagram before and after calibration (format 2 on)
    saved_model.pb  with variables/: the same served procedure as a TensorFlow SavedModel (optional)
    openvino/       model.xml + model.bin: the same served procedure as OpenVINO IR (fp32), compiled at
                    publish, and compiled.json (`CompiledIR`): TensorFlow's answers to the probe batch,
                    which the service holds the IR to at load, so it serves without TensorFlow
    openvino-int8/  model.xml + model.bin: the served procedure quantized to int8 (optional; only in
                    versions made by `python -m training quantize`, whose metadata says how it scores)
    novelty.npz     the novelty score's statistics (optional, format 3: `training/core/novelty.py`)

The three JSON files are typed pydantic models (`training/core/records.py`): writers
build them, readers get fields, and `load_artifact` refuses a version whose files are
missing or invalid. Every path inside the store is built here (`version_path`,
`version_dir`, `checkpoint_dir`), so no other module knows the layout.

Beside the versions, a model folder may hold `serving.json` (which versions serve:
`training/core/policy.py`) and `runs/` (repeated runs of a recipe: `training/core/runs.py`);
both use this module's records and readers.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from training.core.novelty import STATISTICS_FILE, NoveltyStatistics, load_statistics
from training.core.records import CompiledIR, InvalidArtifact, Metadata, Metrics, Summary, read_record
from training.core.staging import STAGING_PREFIX, publish, staging_name

MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.json"
CURVES_FILE = "curves.png"
CONFUSION_FILE = "confusion.png"
CALIBRATION_FILE = "calibration.png"
PLOT_FILES = (CURVES_FILE, CONFUSION_FILE, CALIBRATION_FILE)
ARTIFACT_FILES = (MODEL_FILE, METADATA_FILE, SUMMARY_FILE, METRICS_FILE, *PLOT_FILES)
FORMAT_1_FILES = tuple(name for name in ARTIFACT_FILES if name != CALIBRATION_FILE)
SAVED_MODEL_FILE = "saved_model.pb"  # With variables/: the portable SavedModel (training/export.py), optional.
INT8_DIR = "openvino-int8"  # The int8 OpenVINO model (training/quantize.py), optional.
INT8_MODEL_FILE = "model.xml"  # With model.bin beside it.
IR_DIR = "openvino"  # The fp32 OpenVINO IR of the served procedure (training/export.py), with its record.
IR_MODEL_FILE = "model.xml"  # With model.bin beside it.
IR_RECORD_FILE = "compiled.json"  # `CompiledIR`; written last, so its presence marks a complete IR.
CHECKPOINTS_DIR = ".checkpoints"

# Names become folder names: no separators, no dots in front, nothing a URL could smuggle.
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class ArtifactNotFound(LookupError):
    """No such model or version in the store."""


@dataclass(frozen=True)
class Artifact:
    """One stored version, read and validated: everything but the Keras model itself."""

    folder: Path
    metadata: Metadata
    summary: Summary
    metrics: Metrics

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def version(self) -> int:
        return int(self.folder.name)


# ---- reading --------------------------------------------------------------------------


def is_valid_name(name: str) -> bool:
    return bool(_NAME_PATTERN.fullmatch(name))


def list_models(models_dir: Path) -> list[str]:
    """Names of models with at least one version folder."""
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir() if is_valid_name(p.name) and list_versions(models_dir, p.name))


def list_versions(models_dir: Path, name: str) -> list[int]:
    """Versions of `name`, oldest first (staging folders are not versions)."""
    folder = model_path(models_dir, name)
    if not is_valid_name(name) or not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and p.is_dir())


def scan(models_dir: Path) -> tuple[dict[str, list[int]], dict[str, str]]:
    """(versions per readable model, why per unreadable model): one unreadable folder never hides the rest."""
    versions: dict[str, list[int]] = {}
    problems: dict[str, str] = {}
    if not models_dir.is_dir():
        return versions, problems
    for folder in sorted(models_dir.iterdir()):
        if not is_valid_name(folder.name):
            continue
        try:
            found = list_versions(models_dir, folder.name)
        except OSError as error:
            problems[folder.name] = f"cannot read {folder.name}/: {error.strerror or error}"
            continue
        if found:
            versions[folder.name] = found
    return versions, problems


def signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of a version's files: changes when its files do."""
    try:
        return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()))
    except OSError:
        return ()


def content_digest(folder: Path) -> str:
    """A hash of what defines a version's predictions (weights and metadata): keys caches derived from it.

    Unlike `signature`, it survives a copy or a fresh clone, which change modification times.
    """
    digest = hashlib.sha256()
    for filename in (MODEL_FILE, METADATA_FILE):
        digest.update((folder / filename).read_bytes())
    return digest.hexdigest()


def model_path(models_dir: Path, name: str) -> Path:
    """The folder of model `name`: its versions, and beside them its serving policy, runs and backups."""
    return models_dir / name


def version_path(models_dir: Path, name: str, version: int) -> Path:
    """Where version `version` of `name` lives (whether or not it exists)."""
    return model_path(models_dir, name) / str(version)


def version_dir(models_dir: Path, name: str, version: int | None = None) -> Path:
    """The folder of `name` at `version` (newest when None); raises ArtifactNotFound."""
    versions = list_versions(models_dir, name)
    if not versions:
        raise ArtifactNotFound(f"model {name!r} not found")
    if version is None:
        version = versions[-1]
    if version not in versions:
        raise ArtifactNotFound(f"model {name!r} has no version {version} (versions: {versions})")
    return version_path(models_dir, name, version)


def load_artifact(folder: Path) -> Artifact:
    """Read and validate a version's files; raises InvalidArtifact naming what is wrong."""
    metadata = read_record(folder, METADATA_FILE, Metadata)
    required = FORMAT_1_FILES if metadata.format_version == 1 else ARTIFACT_FILES
    missing = [name for name in required if not (folder / name).is_file()]
    if missing:
        raise InvalidArtifact(f"missing {', '.join(missing)}")
    return Artifact(
        folder=folder,
        metadata=metadata,
        summary=read_record(folder, SUMMARY_FILE, Summary),
        metrics=read_record(folder, METRICS_FILE, Metrics),
    )


def load_ir_record(folder: Path) -> CompiledIR | None:
    """The version's IR record, or None when it has no complete IR (older versions)."""
    if not (folder / IR_DIR / IR_RECORD_FILE).is_file():
        return None
    return read_record(folder / IR_DIR, IR_RECORD_FILE, CompiledIR)


def load_novelty_statistics(folder: Path, metadata: Metadata) -> NoveltyStatistics | None:
    """The version's novelty statistics, checked against its record; None for a version without a score."""
    if metadata.novelty is None:
        return None
    path = folder / STATISTICS_FILE
    try:
        payload = path.read_bytes()
    except OSError as error:
        raise InvalidArtifact(f"{STATISTICS_FILE} is unreadable: {error}") from error
    if hashlib.sha256(payload).hexdigest() != metadata.novelty.statistics_sha256:
        raise InvalidArtifact(f"{STATISTICS_FILE} does not match the checksum in {METADATA_FILE}")
    return load_statistics(path)


def load_keras_model(folder: Path) -> Any:
    """The version's Keras model, uncompiled (serving needs no optimizer)."""
    import keras  # Lazily: reading the JSON files must not pay for TensorFlow.

    path = folder / MODEL_FILE
    # Keras reports a truncated archive as "File not found"; say what is actually wrong.
    if path.is_file() and not zipfile.is_zipfile(path):
        where = f"{folder.parent.name}/{folder.name}/{MODEL_FILE}"
        raise InvalidArtifact(f"{where} is not a complete .keras archive (truncated or corrupt)")
    return keras.saving.load_model(path, compile=False)


# ---- writing --------------------------------------------------------------------------


class SavableModel(Protocol):
    def save(self, filepath: str | Path) -> None: ...


def checkpoint_dir(models_dir: Path, name: str) -> Path:
    """Where an unfinished run keeps its per-epoch backups so it can resume."""
    return model_path(models_dir, name) / CHECKPOINTS_DIR


def save_version(
    models_dir: Path,
    model: SavableModel,
    metadata: Metadata,
    summary: Summary,
    metrics: Metrics,
    plots: Mapping[str, bytes],
    extras: Callable[[Path], None] | None = None,
) -> Path:
    """Write every file into a staging folder, then rename it to the next free version; returns it.

    On any exception (Ctrl-C included) the staging folder is deleted, so nothing
    partial is ever visible. The version number is chosen at rename time, so two
    concurrent runs get distinct versions.
    """
    if not is_valid_name(metadata.name):
        raise ValueError(f"invalid model name {metadata.name!r}")
    if set(plots) != set(PLOT_FILES):
        raise ValueError(f"plots must be exactly {PLOT_FILES}, got {sorted(plots)}")
    folder = models_dir / metadata.name
    folder.mkdir(parents=True, exist_ok=True)
    staging = staging_name(folder / "new-version")
    staging.mkdir()
    try:
        model.save(staging / MODEL_FILE)
        write_record(staging, SUMMARY_FILE, summary)
        write_record(staging, METRICS_FILE, metrics)
        for filename, png in plots.items():
            (staging / filename).write_bytes(png)
        if extras is not None:  # More files for the version (the SavedModel export), before it is visible.
            extras(staging)
        return _claim_version(staging, folder, metadata)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_stale_staging(models_dir: Path, name: str) -> list[Path]:
    """Delete staging folders left by killed processes (their pid, in the name, is gone); returns them."""
    folder = model_path(models_dir, name)
    if not folder.is_dir():
        return []
    stale = []
    for path in folder.glob(f"{STAGING_PREFIX}*"):
        pid = path.name.removeprefix(STAGING_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            stale.append(path)
    return stale


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Alive, someone else's.
        return True
    return True


def write_record(folder: Path, filename: str, record: BaseModel) -> None:
    (folder / filename).write_text(record.model_dump_json(indent=2) + "\n", encoding="utf-8")


def _claim_version(staging: Path, folder: Path, metadata: Metadata) -> Path:
    """Rename the staging folder to the next free version number.

    rename(2) onto a missing or empty folder is atomic; onto a non-empty one it
    fails, which means another run took that number first, so try the next.
    """
    for _ in range(100):
        versions = [int(p.name) for p in folder.iterdir() if p.name.isdigit()]
        target = folder / str(max(versions, default=0) + 1)
        write_record(staging, METADATA_FILE, metadata.model_copy(update={"version": int(target.name)}))
        try:
            publish(staging, target)
        except OSError:
            continue
        return target
    raise RuntimeError(f"could not claim a version number in {folder}")
