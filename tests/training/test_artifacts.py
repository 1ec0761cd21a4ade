"""The model store layout: versions, atomic publication, name safety."""

from __future__ import annotations

from pathlib import Path

import pytest

from training import artifacts


def _fill(folder: Path) -> None:
    for name in artifacts.ARTIFACT_FILES:
        if name.endswith(".json"):
            artifacts.write_json(folder, name, {"name": "m"})
        else:
            (folder / name).write_bytes(b"x")


def test_versions_are_integers_in_order_and_staging_folders_are_ignored(tmp_path: Path) -> None:
    for name in ("1", "10", "2", ".tmp-123-abcd", "notes"):
        (tmp_path / "m" / name).mkdir(parents=True)
    assert artifacts.list_versions(tmp_path, "m") == [1, 2, 10]
    assert artifacts.version_dir(tmp_path, "m") == tmp_path / "m" / "10"


def test_new_version_publishes_the_next_number_with_its_version_recorded(tmp_path: Path) -> None:
    for expected in (1, 2):
        with artifacts.new_version(tmp_path, "m") as staged:
            _fill(staged.path)
        assert staged.published == tmp_path / "m" / str(expected)
        assert artifacts.read_json(staged.published, artifacts.METADATA_FILE)["version"] == expected
    assert artifacts.list_versions(tmp_path, "m") == [1, 2]


def test_failure_while_writing_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), artifacts.new_version(tmp_path, "m") as staged:
        _fill(staged.path)
        raise KeyboardInterrupt
    assert list((tmp_path / "m").iterdir()) == []


def test_incomplete_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="incomplete"), artifacts.new_version(tmp_path, "m") as staged:
        artifacts.write_json(staged.path, artifacts.METADATA_FILE, {})
    assert list((tmp_path / "m").iterdir()) == []


@pytest.mark.parametrize("name", ["..", "../etc", "a/b", ".hidden", "", "a" * 65, "m%2Fx"])
def test_unsafe_names_are_never_models(tmp_path: Path, name: str) -> None:
    assert not artifacts.is_valid_name(name)
    with pytest.raises(artifacts.ArtifactNotFound):
        artifacts.version_dir(tmp_path, name)


def test_unknown_version_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "m" / "1").mkdir(parents=True)
    with pytest.raises(artifacts.ArtifactNotFound, match="no version 7"):
        artifacts.version_dir(tmp_path, "m", 7)
