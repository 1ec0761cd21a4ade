"""The layout's promises, checked on the source: who may import whom, who may read the store's files."""

from __future__ import annotations

from pathlib import Path

from scripts.import_graph import graph, layering_problems
from tests.utils.data import REPO


def test_training_never_imports_the_web_stack_and_the_app_uses_only_the_core() -> None:
    assert layering_problems(graph()) == []


def test_the_rule_catches_a_violation() -> None:
    edges = graph() | {"training.bad": (set(), {"fastapi"}), "app.bad": ({"training.train"}, set())}
    assert len(layering_problems(edges)) == 2


def _sources(package: str) -> dict[Path, str]:
    return {path: path.read_text() for path in (REPO / package).rglob("*.py")}


def test_no_training_module_carries_an_http_status() -> None:
    for path, source in _sources("training").items():
        assert "HTTPException" not in source and "status_code" not in source, path
        assert ".status = " not in source, path


def test_only_the_format_module_reads_the_store_files() -> None:
    """The app reads versions through `load_artifact` only; training writes them through `save_version`."""
    for path, source in (_sources("app") | _sources("training")).items():
        if path.parent == REPO / "training" / "core" and path.name in ("artifacts.py", "policy.py", "runs.py"):
            continue  # The store format: versions, serving policies, recorded runs.
        for needle in ("read_json", "write_json", "METADATA_FILE", "METRICS_FILE", "SUMMARY_FILE"):
            assert needle not in source, f"{path.relative_to(REPO)} uses {needle}"
    for path, source in _sources("app").items():  # json.loads of request bodies is fine; files are not.
        assert "json.load(" not in source and "read_text" not in source, f"{path.relative_to(REPO)} reads files"
