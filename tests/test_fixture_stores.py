"""The committed fixture stores: used only while they are what the code builds, and complete."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.utils import stores
from training.core import artifacts, records

VERSIONS = {"tiny": [1], "quantized": [1, 2], "novelty": [1, 2, 3], "calibrated": [1, 2, 3, 4]}


def _copy_inputs(root: Path) -> None:
    for path in stores.input_files():
        target = root / path.relative_to(stores.REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)


@pytest.mark.parametrize(
    ("changed", "counts"),
    [
        ("training/train.py", True),
        ("training/core/forward.py", True),
        ("tests/utils/data.py", True),
        ("requirements-dev.lock", True),
        ("app/main.py", False),
        ("tests/app/test_predict.py", False),
    ],
)
def test_the_fingerprint_follows_every_input_of_the_build_and_nothing_else(
    changed: str, counts: bool, tmp_path: Path
) -> None:
    _copy_inputs(tmp_path)
    before = stores.fingerprint(tmp_path)
    assert before == stores.fingerprint(stores.REPO)
    edited = tmp_path / changed
    edited.parent.mkdir(parents=True, exist_ok=True)
    with edited.open("a") as handle:
        handle.write("\n# edited\n")
    assert (stores.fingerprint(tmp_path) != before) is counts


def test_the_committed_stores_are_current_and_hold_every_version_the_tests_read() -> None:
    """Like a lockfile check: a change to training needs `make fixtures`, or every session trains them."""
    assert stores.committed_is_current(), "training changed since the fixture stores were built: `make fixtures`"
    for name, versions in VERSIONS.items():
        store = stores.COMMITTED / name
        assert artifacts.list_versions(store, "model_1") == versions
        for version in versions:
            artifact = artifacts.load_artifact(artifacts.version_dir(store, "model_1", version))
            assert artifact.metadata.format_version == records.FORMAT_VERSION


@pytest.mark.slow
def test_a_rebuild_lays_out_the_committed_stores_file_for_file(tiny_cifar_dir: Path, tmp_path: Path) -> None:
    stores.build_all(tmp_path, tiny_cifar_dir)
    for name, versions in VERSIONS.items():
        built, committed = tmp_path / name, stores.committed() / name
        assert sorted(p.relative_to(built) for p in built.rglob("*")) == sorted(
            p.relative_to(committed) for p in committed.rglob("*")
        )
        for version in versions:
            fresh = artifacts.load_artifact(artifacts.version_dir(built, "model_1", version)).metadata
            kept = artifacts.load_artifact(artifacts.version_dir(committed, "model_1", version)).metadata
            assert (fresh.params, fresh.temperature is None, fresh.novelty is None, fresh.quantization is None) == (
                kept.params,
                kept.temperature is None,
                kept.novelty is None,
                kept.quantization is None,
            )
