"""CIFAR-10 in the official "python version" layout, read and validated.

Security note: the batch files are Python pickles, and unpickling can run code.
Only point this loader at files you trust (the official archive or a copy of it).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.core.classes import CLASS_NAMES
from training.core.staging import staged_dir

DATA_ENV_VAR = "CIFAR10_DATA"
BATCH_DIR_NAME = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
IMAGE_SHAPE = (32, 32, 3)
PIXELS_PER_IMAGE = 32 * 32 * 3
KERAS_CACHE = Path.home() / ".keras" / "datasets" / BATCH_DIR_NAME
EXTRACT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cifar10-service"


class DatasetError(RuntimeError):
    """The dataset is missing, truncated or malformed; the message names the file."""


@dataclass(frozen=True)
class Cifar10:
    x_train: np.ndarray  # (N, 32, 32, 3) uint8
    y_train: np.ndarray  # (N,) int64, 0..9
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str

    def checksum(self) -> str:
        """sha256 over the arrays' raw bytes, comparable with ../shared/datasets/README.md."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def calibration_split(train_images: int, size: int, seed: int) -> np.ndarray:
    """Indices (sorted) of the training images held out for calibration: a seeded draw, so that
    anyone can re-derive the split from the seed and size recorded in metrics.json."""
    if not 0 <= size < train_images:
        raise ValueError(f"a calibration split of {size} needs more than {train_images} training images")
    return np.sort(np.random.default_rng(seed).permutation(train_images)[:size])


def array_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(f"{path}: file is missing")
    try:
        with path.open("rb") as handle:
            content = pickle.load(handle, encoding="bytes")
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise DatasetError(f"{path}: not a readable CIFAR-10 pickle (truncated or corrupt: {error})") from error
    if not isinstance(content, dict):
        raise DatasetError(f"{path}: expected a pickled dict, found {type(content).__name__}")
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in content.items()}


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    if "data" not in batch or "labels" not in batch:
        raise DatasetError(f"{path}: missing 'data' or 'labels' (keys: {sorted(batch)})")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS_PER_IMAGE:
        raise DatasetError(f"{path}: 'data' must be N x {PIXELS_PER_IMAGE} uint8, found {data.shape} {data.dtype}")
    if labels.shape != (data.shape[0],):
        raise DatasetError(f"{path}: {labels.shape[0]} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES)):
        raise DatasetError(f"{path}: labels outside 0..{len(CLASS_NAMES) - 1}")
    # Rows are channel-major (all red, then green, then blue); Keras wants HWC.
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _read_class_names(path: Path) -> list[str]:
    meta = _unpickle(path)
    names = meta.get("label_names")
    if not isinstance(names, list) or len(names) != len(CLASS_NAMES):
        raise DatasetError(f"{path}: 'label_names' must list {len(CLASS_NAMES)} classes")
    return [name.decode() if isinstance(name, bytes) else str(name) for name in names]


def load_batches_dir(folder: Path, source: str | None = None) -> Cifar10:
    """Read an extracted `cifar-10-batches-py` folder; `source` names where it came from (default: the
    folder's name), recorded in every version: a name, never a path of this machine."""
    train = [_read_batch(folder / name) for name in TRAIN_FILES]
    x_test, y_test = _read_batch(folder / TEST_FILE)
    class_names = _read_class_names(folder / META_FILE)
    return Cifar10(
        x_train=np.concatenate([images for images, _ in train]),
        y_train=np.concatenate([labels for _, labels in train]),
        x_test=x_test,
        y_test=y_test,
        class_names=class_names,
        source=source or folder.name,
    )


def extract_archive(archive: Path, cache_dir: Path | None = None) -> Path:
    """Extract the .tar.gz into a cache keyed by the archive's size and mtime, never beside it."""
    cache_dir = cache_dir or EXTRACT_CACHE
    stat = archive.stat()
    target = cache_dir / f"{archive.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    if (target / BATCH_DIR_NAME / TEST_FILE).is_file():
        return target / BATCH_DIR_NAME
    try:
        with staged_dir(target, overwrite=False) as staging:
            _extract_batches(archive, staging)
    except OSError:
        if not (target / BATCH_DIR_NAME / TEST_FILE).is_file():
            raise
        # Another process extracted it first: keep its copy.
    return target / BATCH_DIR_NAME


def _extract_batches(archive: Path, folder: Path) -> None:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            # Read as the archive streams: listing the members first would decompress it all twice.
            members = (m for m in tar if _is_batch_file(m))
            # The "data" filter (Python >= 3.11.4) also refuses links and odd permissions.
            if hasattr(tarfile, "data_filter"):
                tar.extractall(folder, members=members, filter="data")
            else:
                tar.extractall(folder, members=members)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DatasetError(f"{archive}: cannot extract the archive ({error})") from error


def _is_batch_file(member: tarfile.TarInfo) -> bool:
    """Only plain files directly inside cifar-10-batches-py/: no links, no `..`, no absolute paths."""
    parts = Path(member.name).parts
    return member.isfile() and len(parts) == 2 and parts[0] == BATCH_DIR_NAME and parts[1] not in ("..", ".")


def load_cifar10(path: str | Path | None = None) -> Cifar10:
    """Load CIFAR-10 from, in order: `path`, $CIFAR10_DATA, Keras's cache, a Keras download.

    `path` may be the archive, the `cifar-10-batches-py` folder or a folder that contains it.
    """
    explicit = path or os.environ.get(DATA_ENV_VAR)
    if explicit:
        return load_from(Path(explicit))
    if KERAS_CACHE.is_dir():
        return load_from(KERAS_CACHE)
    return _download_with_keras()


def load_from(path: Path) -> Cifar10:
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder (set --data or ${DATA_ENV_VAR} to the CIFAR-10 archive)")
    if path.is_file():
        return load_batches_dir(extract_archive(path), source=path.name)
    if (path / BATCH_DIR_NAME).is_dir():
        path = path / BATCH_DIR_NAME
    return load_batches_dir(path)


def _download_with_keras() -> Cifar10:
    try:
        import keras

        keras.datasets.cifar10.load_data()
    except Exception as error:  # Any network or extraction failure ends up here.
        raise DatasetError(
            f"CIFAR-10 not found and the download failed ({error}). "
            f"Set ${DATA_ENV_VAR} to cifar-10-python.tar.gz or its extracted folder."
        ) from error
    return load_from(KERAS_CACHE)
