"""Staged writes: a reader sees the old content or the new, never half; a failed write leaves no trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.core.staging import STAGING_PREFIX, set_aside, staged_dir, staged_file


def test_a_staged_file_replaces_the_old_one_only_when_written(tmp_path: Path) -> None:
    target = tmp_path / "policy.json"
    target.write_text("old")
    with staged_file(target) as staging:
        staging.write_text("new")
        assert target.read_text() == "old"  # Not yet in place while it is written.
    assert target.read_text() == "new"
    assert [path.name for path in tmp_path.iterdir()] == ["policy.json"]


def test_a_failed_file_write_keeps_the_old_file_and_leaves_no_staging(tmp_path: Path) -> None:
    target = tmp_path / "policy.json"
    target.write_text("old")
    with pytest.raises(OSError), staged_file(target) as staging:
        staging.write_text("half")
        raise OSError(28, "No space left on device")
    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["policy.json"]


def test_a_staged_folder_replaces_a_full_one(tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.mkdir()
    (target / "stale.json").write_text("{}")
    with staged_dir(target) as staging:
        (staging / "fresh.json").write_text("{}")
    assert [path.name for path in target.iterdir()] == ["fresh.json"]
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(STAGING_PREFIX)]


def test_without_overwrite_an_existing_folder_wins_and_the_staging_is_removed(tmp_path: Path) -> None:
    """How a version number is claimed: two writers, one folder, the second one's rename fails."""
    target = tmp_path / "3"
    target.mkdir()
    (target / "model.keras").write_text("first")
    with pytest.raises(OSError), staged_dir(target, overwrite=False) as staging:
        (staging / "model.keras").write_text("second")
    assert (target / "model.keras").read_text() == "first"
    assert [path.name for path in tmp_path.iterdir()] == ["3"]


def test_a_file_set_aside_takes_the_suffix_and_replaces_an_earlier_one(tmp_path: Path) -> None:
    backup = tmp_path / "epoch-0002.weights.h5"
    (tmp_path / "epoch-0002.weights.h5.broken").write_text("older damage")
    backup.write_text("damaged")
    aside = set_aside(backup, ".broken")
    assert aside == tmp_path / "epoch-0002.weights.h5.broken"
    assert aside.read_text() == "damaged"
    assert not backup.exists()
