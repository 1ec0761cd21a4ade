"""The CIFAR-10 loader: official layout, archive or folder, and clear errors for broken files."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tests.utils.data import CLASS_NAMES, TINY_TEST, TINY_TRAIN_PER_BATCH, real_archive_or_skip
from training import data
from training.data import DatasetError, load_cifar10


def test_folder_loads_with_official_shapes(tiny_cifar_dir: Path) -> None:
    dataset = load_cifar10(tiny_cifar_dir)
    assert dataset.x_train.shape == (5 * TINY_TRAIN_PER_BATCH, 32, 32, 3)
    assert dataset.x_train.dtype == np.uint8
    assert dataset.y_train.shape == (5 * TINY_TRAIN_PER_BATCH,)
    assert dataset.x_test.shape == (TINY_TEST, 32, 32, 3)
    assert dataset.class_names == CLASS_NAMES


def test_parent_folder_and_archive_give_identical_arrays(tiny_cifar_dir: Path, tiny_cifar_archive: Path) -> None:
    from_folder = load_cifar10(tiny_cifar_dir.parent)
    from_archive = load_cifar10(tiny_cifar_archive)
    assert from_folder.checksum() == from_archive.checksum()


def test_archive_is_extracted_into_the_cache_not_beside_it(tiny_cifar_archive: Path) -> None:
    load_cifar10(tiny_cifar_archive)
    assert sorted(p.name for p in tiny_cifar_archive.parent.iterdir()) == [tiny_cifar_archive.name]


def test_channel_major_rows_become_hwc_pixels(tiny_cifar_dir: Path) -> None:
    import pickle

    with (tiny_cifar_dir / "test_batch").open("rb") as handle:
        row = pickle.load(handle, encoding="bytes")[b"data"][0]
    image = load_cifar10(tiny_cifar_dir).x_test[0]
    assert image[0, 1, 0] == row[1]  # red plane first
    assert image[0, 1, 1] == row[1024 + 1]  # then green
    assert image[2, 0, 2] == row[2048 + 64]  # then blue, row-major


def test_environment_variable_is_used(tiny_cifar_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(data.DATA_ENV_VAR, str(tiny_cifar_dir))
    assert load_cifar10().checksum() == load_cifar10(tiny_cifar_dir).checksum()
    monkeypatch.setenv(data.DATA_ENV_VAR, str(tiny_cifar_dir / "absent"))
    with pytest.raises(DatasetError, match="absent"):
        load_cifar10()


def test_the_source_is_a_name_never_a_path(tiny_cifar_dir: Path, tiny_cifar_archive: Path) -> None:
    assert load_cifar10(tiny_cifar_dir).source == "cifar-10-batches-py"
    assert load_cifar10(tiny_cifar_archive).source == "cifar-10-python.tar.gz"  # Not the extraction cache.


def test_missing_everything_names_the_environment_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(data.DATA_ENV_VAR, raising=False)
    monkeypatch.setattr(data, "KERAS_CACHE", tmp_path / "absent")
    import keras

    def offline() -> None:
        raise OSError("Name or service not known")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)  # No network in tests.
    with pytest.raises(DatasetError, match=r"download failed .*CIFAR10_DATA"):
        load_cifar10()


def test_missing_path_names_the_environment_variable(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="CIFAR10_DATA"):
        load_cifar10(tmp_path / "nowhere.tar.gz")


@pytest.fixture
def broken_copy(tiny_cifar_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "cifar-10-batches-py"
    shutil.copytree(tiny_cifar_dir, target)
    return target


def test_missing_batch_file_is_named(broken_copy: Path) -> None:
    (broken_copy / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match=r"data_batch_3: file is missing"):
        load_cifar10(broken_copy)


def test_truncated_batch_file_is_named(broken_copy: Path) -> None:
    path = broken_copy / "data_batch_2"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DatasetError, match=r"data_batch_2: .*truncated or corrupt"):
        load_cifar10(broken_copy)


def test_corrupt_batch_file_is_named(broken_copy: Path) -> None:
    (broken_copy / "test_batch").write_bytes(b"this is not a pickle at all")
    with pytest.raises(DatasetError, match=r"test_batch: "):
        load_cifar10(broken_copy)


def test_wrong_shape_and_labels_are_reported(broken_copy: Path) -> None:
    import pickle

    with (broken_copy / "data_batch_1").open("wb") as handle:
        pickle.dump({b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]}, handle)
    with pytest.raises(DatasetError, match=r"data_batch_1: 'data' must be N x 3072"):
        load_cifar10(broken_copy)
    with (broken_copy / "data_batch_1").open("wb") as handle:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}, handle)
    with pytest.raises(DatasetError, match=r"labels outside 0..9"):
        load_cifar10(broken_copy)


def test_only_the_batch_files_leave_an_archive(tiny_cifar_dir: Path, tmp_path: Path) -> None:
    """Links, paths that climb out and files beside the batch folder stay in the archive."""
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tiny_cifar_dir, arcname="cifar-10-batches-py")
        for name in ("../escaped", "readme.html", "cifar-10-batches-py/nested/deeper"):
            tar.addfile(tarfile.TarInfo(name), io.BytesIO())
        link = tarfile.TarInfo("cifar-10-batches-py/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    folder = data.extract_archive(archive, tmp_path / "cache")
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in tiny_cifar_dir.iterdir())
    assert [p.name for p in folder.parent.iterdir()] == ["cifar-10-batches-py"]
    assert not (tmp_path / "escaped").exists()
    assert load_cifar10(archive).checksum() == load_cifar10(tiny_cifar_dir).checksum()


def test_corrupt_archive_is_named(tmp_path: Path) -> None:
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DatasetError, match=r"cifar-10-python.tar.gz: cannot extract"):
        load_cifar10(archive)


REAL_X_TRAIN_SHA256 = "47af8b02cfcfb6cdf3dbbd1969ad7f1b70f4413f6f80f437b020ee4e5bc8304a"
REAL_X_TEST_SHA256 = "f9b1e2130bab680db56eb06d886f7f1ad0f1183907ceff4659d1735c890f5b04"


def test_real_dataset_matches_its_published_checksums() -> None:
    dataset = load_cifar10(real_archive_or_skip())
    assert dataset.x_train.shape == (50000, 32, 32, 3)
    assert dataset.x_test.shape == (10000, 32, 32, 3)
    assert np.bincount(dataset.y_train).tolist() == [5000] * 10
    assert np.bincount(dataset.y_test).tolist() == [1000] * 10
    assert dataset.y_test[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert data.array_sha256(dataset.x_train) == REAL_X_TRAIN_SHA256
    assert data.array_sha256(dataset.x_test) == REAL_X_TEST_SHA256
    assert dataset.class_names == CLASS_NAMES
