"""The model store format: versions, atomic publication, typed files, validation, name safety."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.utils.data import COMMITTED_MODELS
from training.core import artifacts, records
from training.core.preprocessing import Scaling, TestTimeAugmentation


class FakeModel:
    """Stands in for a Keras model: the format only needs `save(path)`."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def save(self, filepath: str | Path) -> None:
        if self.fail:
            raise KeyboardInterrupt  # Ctrl-C in the middle of writing.
        Path(filepath).write_bytes(b"weights")


def _records() -> tuple[records.Metadata, records.Summary, records.Metrics]:
    metadata = records.Metadata(
        name="m",
        architecture="m",
        description="a test model",
        created_at="2026-01-01T00:00:00+00:00",
        scaling=Scaling.UNIT,
        class_names=[f"class{i}" for i in range(10)],
        params=12,
        test_accuracy=0.5,
        keras_version="3",
        tensorflow_version="2",
    )
    summary = records.Summary(
        model="m", layers=[], total_params=12, trainable_params=12, non_trainable_params=0, text=""
    )
    metrics = records.Metrics(
        architecture="m",
        history=[{"epoch": 1, "loss": 1.5}],
        test_accuracy=0.5,
        test_loss=1.2,
        test_images=2,
        per_class_accuracy={},
        confusion_matrix=[[1]],
        evaluate_seconds=1.0,
        epochs=1,
        training_seconds=2.0,
        wall_seconds=3.0,
        seconds_per_epoch=2.0,
        images_per_second=10.0,
        hyperparameters={"seed": 0},
        dataset=records.DatasetFingerprint(source="s", x_train_sha256="a", x_test_sha256="b", labels_sha256="c"),
        environment={"python": "3.11"},
    )
    return metadata, summary, metrics


def _save(store: Path, model: FakeModel | None = None) -> Path:
    metadata, summary, metrics = _records()
    plots = {name: b"png" for name in artifacts.PLOT_FILES}
    return artifacts.save_version(store, model or FakeModel(), metadata, summary, metrics, plots)


def test_versions_are_integers_in_order_and_staging_folders_are_ignored(tmp_path: Path) -> None:
    for name in ("1", "10", "2", ".tmp-123-abcd", "notes"):
        (tmp_path / "m" / name).mkdir(parents=True)
    assert artifacts.list_versions(tmp_path, "m") == [1, 2, 10]
    assert artifacts.version_dir(tmp_path, "m") == tmp_path / "m" / "10"


def test_save_publishes_the_next_number_with_its_version_recorded(tmp_path: Path) -> None:
    for expected in (1, 2):
        folder = _save(tmp_path)
        assert folder == tmp_path / "m" / str(expected)
        assert sorted(p.name for p in folder.iterdir()) == sorted(artifacts.ARTIFACT_FILES)
        assert artifacts.load_artifact(folder).metadata.version == expected
    assert artifacts.list_versions(tmp_path, "m") == [1, 2]


def test_a_saved_version_reads_back_field_for_field(tmp_path: Path) -> None:
    metadata, summary, metrics = _records()
    artifact = artifacts.load_artifact(_save(tmp_path))
    assert artifact.metadata == metadata.model_copy(update={"version": 1})
    assert artifact.summary == summary
    assert artifact.metrics == metrics
    assert artifact.metrics.history[0]["epoch"] == 1 and isinstance(artifact.metrics.history[0]["epoch"], int)
    assert artifact.metadata.test_time_augmentation is TestTimeAugmentation.NONE


def test_failure_while_writing_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        _save(tmp_path, FakeModel(fail=True))
    assert list((tmp_path / "m").iterdir()) == []


def test_plots_must_be_the_formats_plots(tmp_path: Path) -> None:
    metadata, summary, metrics = _records()
    with pytest.raises(ValueError, match="plots"):
        artifacts.save_version(tmp_path, FakeModel(), metadata, summary, metrics, {"curves.png": b""})


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda folder: (folder / artifacts.SUMMARY_FILE).unlink(), "missing summary.json"),
        (lambda folder: (folder / artifacts.METADATA_FILE).write_text("{not json"), "metadata.json is unreadable"),
        (lambda folder: (folder / artifacts.METRICS_FILE).write_text("[]"), "metrics.json is not a JSON object"),
        (lambda folder: _patch_metadata(folder, format_version=99), "unsupported artifact format 99"),
        (lambda folder: _patch_metadata(folder, input_shape=[28, 28, 1]), "input shape"),
        (lambda folder: _patch_metadata(folder, class_names=["a"]), "1 class names"),
        (lambda folder: _patch_metadata(folder, scaling="divide_by_7"), "metadata.json is invalid"),
    ],
)
def test_invalid_versions_are_refused_with_the_reason(tmp_path: Path, damage, message: str) -> None:
    folder = _save(tmp_path)
    damage(folder)
    with pytest.raises(records.InvalidArtifact, match=message):
        artifacts.load_artifact(folder)


def _patch_metadata(folder: Path, **changes: object) -> None:
    path = folder / artifacts.METADATA_FILE
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


@pytest.mark.parametrize(
    "version", ["model_1/1", "model_1/2", "model_2/1", "model_2/2", "whitened_convnet/1", "whitened_convnet/2"]
)
def test_committed_versions_of_format_1_stay_readable(version: str) -> None:
    artifact = artifacts.load_artifact(COMMITTED_MODELS / version)
    assert artifact.metadata.format_version == 1
    assert artifact.metadata.name == version.split("/")[0]
    assert artifact.summary.total_params == artifact.metadata.params


@pytest.mark.parametrize("name", ["..", "../etc", "a/b", ".hidden", "", "a" * 65, "m%2Fx"])
def test_unsafe_names_are_never_models(tmp_path: Path, name: str) -> None:
    assert not artifacts.is_valid_name(name)
    with pytest.raises(artifacts.ArtifactNotFound):
        artifacts.version_dir(tmp_path, name)


def test_unknown_version_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "m" / "1").mkdir(parents=True)
    with pytest.raises(artifacts.ArtifactNotFound, match="no version 7"):
        artifacts.version_dir(tmp_path, "m", 7)


def test_staging_folders_of_dead_processes_are_removed(tmp_path: Path) -> None:
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "m" / f".tmp-{dead.stdout.strip()}-abcd").mkdir(parents=True)
    (tmp_path / "m" / f".tmp-{os.getpid()}-beef").mkdir()  # Ours: still being written.
    removed = artifacts.remove_stale_staging(tmp_path, "m")
    assert [path.name for path in removed] == [f".tmp-{dead.stdout.strip()}-abcd"]
    assert [path.name for path in (tmp_path / "m").iterdir()] == [f".tmp-{os.getpid()}-beef"]
