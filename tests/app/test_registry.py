"""The registry's logic, with a fake loader: no TensorFlow, no HTTP, no sleeps.

A "version" here is an empty folder; the fake loader decides what loading it gives.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.config import Settings
from app.errors import ModelNotFound, ModelNotReady
from app.inference import Servable
from app.registry import LoadState, ModelRegistry
from training.core import artifacts, policy, records
from training.core.classes import CLASS_NAMES
from training.core.preprocessing import Scaling


class FakeLoader:
    """Reads any folder as a version and loads it as a model that answers its own version number;
    `broken` folders read fine (their JSON is valid) but fail to load (their weights are not)."""

    def __init__(self, accuracies: dict[int, float] | None = None) -> None:
        self.broken: set[Path] = set()
        self.loads: list[Path] = []
        self.accuracies = accuracies or {}  # Version -> test accuracy, overriding the name-based default.
        self.delay = 0.0  # Seconds each load takes.

    def __call__(self, folder: Path) -> Servable:
        self.loads.append(folder)
        time.sleep(self.delay)
        if folder in self.broken:
            raise records.InvalidArtifact("missing model.keras")
        artifact = self.read(folder)
        version = artifact.version

        def predict(images: np.ndarray) -> np.ndarray:
            return np.full((len(images), 10), float(version), np.float32)

        return Servable(artifact, predict)

    def read(self, folder: Path) -> artifacts.Artifact:
        version = int(folder.name)
        accuracy = {"good": 0.9, "fair": 0.6}.get(folder.parent.name, 0.5) + version / 1000
        accuracy = self.accuracies.get(version, accuracy)
        metadata = records.Metadata(
            name=folder.parent.name,
            version=version,
            architecture=folder.parent.name,
            description="fake",
            created_at="2026-01-01T00:00:00+00:00",
            scaling=Scaling.UNIT,
            class_names=list(CLASS_NAMES),
            params=1,
            test_accuracy=accuracy,
            keras_version="3",
            tensorflow_version="2",
        )
        return artifacts.Artifact(folder, metadata, summary=None, metrics=None)  # type: ignore[arg-type]


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coroutine)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "models"


def add(store: Path, name: str, version: int) -> Path:
    folder = store / name / str(version)
    folder.mkdir(parents=True)
    return folder


def registry_for(store: Path, loader: FakeLoader, **settings: Any) -> ModelRegistry:
    executor = ThreadPoolExecutor(max_workers=1)
    return ModelRegistry(Settings(models_dir=store, **settings), loader=loader, executor=executor, reader=loader.read)


def in_loop(
    store: Path, loader: FakeLoader, body: Callable[[ModelRegistry], Coroutine[Any, Any, None]], **settings: Any
) -> None:
    """Run `body` against a fresh registry inside one event loop, closing it afterwards."""

    async def scenario() -> None:
        registry = registry_for(store, loader, **settings)
        try:
            await body(registry)
        finally:
            await registry.close()

    run(scenario())


def test_refresh_loads_the_newest_and_the_others_on_their_first_request(store: Path) -> None:
    add(store, "good", 1)
    add(store, "good", 2)
    loader = FakeLoader()

    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()
        assert registry.loaded_versions("good") == [2] and registry.servable_versions("good") == [1, 2]
        assert registry.states("good")[1].state is LoadState.AVAILABLE
        assert registry.get("good").version == 2
        image = np.zeros((32, 32, 3), np.uint8)
        assert (await registry.get("good").batcher.predict(image))[0] == 2.0
        assert registry.artifact("good", 1).version == 1  # Its card, without loading it.
        async with registry.serve("good", 1) as loaded:
            assert (await loaded.batcher.predict(image))[0] == 1.0
        assert registry.loaded_versions("good") == [1, 2]
        assert registry.states("good")[1].state is LoadState.LOADED

    in_loop(store, loader, body)


def test_concurrent_requests_for_an_unloaded_version_share_one_load(store: Path) -> None:
    for version in (1, 2):
        add(store, "good", version)
    loader = FakeLoader()
    loader.delay = 0.2

    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()

        async def ask() -> float:
            async with registry.serve("good", 1) as loaded:
                return float((await loaded.batcher.predict(np.zeros((32, 32, 3), np.uint8)))[0])

        assert await asyncio.gather(*(ask() for _ in range(8))) == [1.0] * 8
        assert [folder.name for folder in loader.loads] == ["2", "1"]

    in_loop(store, loader, body)


def test_a_load_slower_than_the_timeout_is_503_then_serves_once_done(store: Path) -> None:
    for version in (1, 2):
        add(store, "good", version)
    loader = FakeLoader()

    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()
        loader.delay = 0.3
        with pytest.raises(ModelNotReady, match=r"still loading after 0\.05 s; retry"):
            async with registry.serve("good", 1):
                pass
        await asyncio.sleep(0.5)  # The load went on without the request that started it.
        async with registry.serve("good", 1) as loaded:
            assert loaded.version == 1
        assert len(loader.loads) == 2

    in_loop(store, loader, body, version_load_timeout_seconds=0.05)


def test_beyond_the_limit_the_least_recently_used_idle_version_is_unloaded(store: Path) -> None:
    for version in range(1, 6):
        add(store, "good", version)
    loader = FakeLoader()

    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()  # Version 5, the default, is loaded and always stays.
        async with registry.serve("good", 1):  # Busy all along: never unloaded, though the oldest.
            for version in (2, 3, 4):
                async with registry.serve("good", version):
                    pass
            assert registry.loaded_versions("good") == [1, 4, 5]
            assert registry.states("good")[2].state is LoadState.AVAILABLE
        async with registry.serve("good", 2):
            pass
        assert registry.loaded_versions("good") == [2, 4, 5]  # Version 1, now idle and oldest, made room.

    in_loop(store, loader, body, max_loaded_versions=3)


def test_a_failed_load_is_reported_and_never_served(store: Path) -> None:
    add(store, "good", 1)
    loader = FakeLoader()
    loader.broken.add(add(store, "good", 2))

    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()
        states = registry.states("good")
        assert states[2].state is LoadState.FAILED and "missing model.keras" in (states[2].error or "")
        assert registry.get("good").version == 1
        with pytest.raises(ModelNotReady, match="version 2 is failed"):
            registry.get("good", 2)

    in_loop(store, loader, body)


def test_unknown_models_and_versions_are_not_found(store: Path) -> None:
    add(store, "good", 1)

    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()
        with pytest.raises(ModelNotFound):
            registry.get("nope")
        with pytest.raises(ModelNotFound, match="no version 9"):
            registry.get("good", 9)

    in_loop(store, FakeLoader(), body)


def test_hot_swap_and_unload_follow_the_store(store: Path) -> None:
    add(store, "good", 1)
    loader = FakeLoader()

    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()
        add(store, "good", 2)
        await registry.refresh()
        assert registry.get("good").version == 2
        assert [folder.name for folder in loader.loads] == ["1", "2"]  # Version 1 was not reloaded.
        (store / "good" / "2").rmdir()
        await registry.refresh()
        assert registry.get("good").version == 1 and list(registry.states("good")) == [1]
        (store / "good" / "1").rmdir()
        await registry.refresh()
        assert registry.model_names() == []

    in_loop(store, loader, body)


def test_default_model_is_the_most_accurate_unless_configured(store: Path) -> None:
    add(store, "good", 1)
    add(store, "fair", 1)

    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()
        assert registry.default_model() == "good"
        assert registry.get().name == "good"
        registry.settings = Settings(models_dir=store, default_model="fair")
        assert registry.get().name == "fair"

    in_loop(store, FakeLoader(), body)


def test_nothing_loaded_is_not_ready(store: Path) -> None:
    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()
        with pytest.raises(ModelNotReady, match="no model"):
            registry.get()

    in_loop(store, FakeLoader(), body)


def test_loaded_models_are_kept_out_of_garbage_collection_walks(store: Path) -> None:
    add(store, "good", 1)
    gc.unfreeze()

    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()
        assert gc.get_freeze_count() > 0
        (store / "good" / "1").rmdir()
        await registry.refresh()
        assert gc.get_freeze_count() == 0  # Unloading lets the dropped model be collected.

    in_loop(store, FakeLoader(), body)


# ---- serving policy and promotion gate --------------------------------------------------


def test_a_worse_new_version_is_held_back_and_reachable_only_explicitly(store: Path) -> None:
    add(store, "m", 1)
    add(store, "m", 2)
    loader = FakeLoader({1: 0.608, 2: 0.10})  # A quick trial run published 10% over a 60.8% version.

    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()
        assert registry.get("m").version == 1
        async with registry.serve("m", 2) as loaded:
            assert loaded.version == 2
        held_back = registry.serving("m").held_back
        assert list(held_back) == [2] and "10.00%" in held_back[2] and "60.80%" in held_back[2]

    in_loop(store, loader, body)


def test_a_better_or_slightly_worse_new_version_is_promoted(store: Path) -> None:
    for version in (1, 2, 3):
        add(store, "m", version)
    loader = FakeLoader({1: 0.60, 2: 0.65, 3: 0.645})  # 3 is within the 1-point margin of 2.

    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()
        assert registry.get("m").version == 3 and registry.serving("m").held_back == {}

    in_loop(store, loader, body)


def test_a_pin_overrides_the_gate_and_labels_address_versions(store: Path) -> None:
    for version in (1, 2, 3):
        add(store, "m", version)
    policy.save_policy(store, "m", policy.ServingPolicy(default_version=2, labels={"stable": 1, "canary": 3}))
    loader = FakeLoader({1: 0.9, 2: 0.1, 3: 0.5})

    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()
        assert registry.get("m").version == 2
        assert registry.get("m", label="stable").version == 1
        assert registry.get("m", label="canary").version == 3
        with pytest.raises(ModelNotFound, match="no label 'beta'"):
            registry.get("m", label="beta")
        assert registry.get("m", version=1, label="stable").version == 1  # Both may be given if they agree.
        with pytest.raises(ModelNotFound, match="label 'stable' names version 1, not 3"):
            registry.get("m", version=3, label="stable")

    in_loop(store, loader, body)


def test_latest_n_loads_only_the_newest_versions_plus_labelled_ones(store: Path) -> None:
    for version in (1, 2, 3, 4):
        add(store, "m", version)
    policy.save_policy(store, "m", policy.ServingPolicy(load=policy.LoadPolicy.LATEST, count=2, labels={"old": 1}))

    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()
        assert registry.servable_versions("m") == [1, 3, 4]
        assert registry.loaded_versions("m") == [1, 4]  # The labelled one and the default.
        assert registry.states("m")[2].state is LoadState.UNLOADED
        with pytest.raises(ModelNotReady, match="unloaded"):
            registry.get("m", 2)

    in_loop(store, FakeLoader(), body)


def test_specific_versions_policy(store: Path) -> None:
    for version in (1, 2, 3):
        add(store, "m", version)
    policy.save_policy(store, "m", policy.ServingPolicy(load=policy.LoadPolicy.SPECIFIC, versions=[2]))

    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()
        assert registry.servable_versions("m") == [2] and registry.get("m").version == 2

    in_loop(store, FakeLoader(), body)


def test_an_invalid_policy_file_is_reported_and_ignored(store: Path) -> None:
    add(store, "m", 1)
    add(store, "m", 2)
    (store / "m" / policy.POLICY_FILE).write_text('{"load": "latest", "cuont": 2}')

    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()
        serving = registry.serving("m")
        assert serving.policy_error is not None and "cuont" in serving.policy_error
        assert registry.servable_versions("m") == [1, 2] and registry.get("m").version == 2

    in_loop(store, FakeLoader(), body)


def test_a_policy_file_that_turns_invalid_keeps_the_last_valid_policy(store: Path) -> None:
    """A truncated or mistyped serving.json must not move the default or drop the labels."""
    for version in (1, 2):
        add(store, "m", version)
    pinned = policy.ServingPolicy(default_version=1, labels={"stable": 1})
    policy.save_policy(store, "m", pinned)

    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()
        assert registry.get("m").version == 1 and registry.serving("m").policy_error is None
        (store / "m" / policy.POLICY_FILE).write_text('{"default_version": 1, "lables": {"stable": 1}}')
        await registry.refresh()
        serving = registry.serving("m")
        assert serving.policy == pinned and registry.get("m").version == 1
        assert registry.resolve("m", label="stable") == ("m", 1)
        assert serving.policy_error is not None and "lables" in serving.policy_error
        assert "keeping the last valid policy from 20" in serving.policy_error
        (store / "m" / policy.POLICY_FILE).write_text('{"default_version": 1, "lab')  # Truncated mid-write.
        await registry.refresh()
        assert registry.get("m").version == 1 and "keeping the last valid policy" in str(
            registry.serving("m").policy_error
        )
        policy.save_policy(store, "m", policy.ServingPolicy())  # Fixed: the file rules again.
        await registry.refresh()
        assert registry.serving("m").policy_error is None and registry.get("m").version == 2

    in_loop(store, FakeLoader(), body)


def test_a_policy_change_takes_effect_at_the_next_scan(store: Path) -> None:
    add(store, "m", 1)
    add(store, "m", 2)

    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()
        assert registry.get("m").version == 2
        policy.save_policy(store, "m", policy.ServingPolicy(default_version=1))
        await registry.refresh()
        assert registry.get("m").version == 1
        policy.save_policy(store, "m", policy.ServingPolicy(load=policy.LoadPolicy.LATEST, count=1))
        await registry.refresh()
        assert registry.servable_versions("m") == [2]
        (store / "m" / policy.POLICY_FILE).unlink()
        await registry.refresh()
        assert registry.servable_versions("m") == [1, 2]

    in_loop(store, FakeLoader(), body)


def test_a_pinned_version_that_is_gone_falls_back_to_the_gate_with_a_note(store: Path) -> None:
    add(store, "m", 1)
    add(store, "m", 2)
    policy.save_policy(store, "m", policy.ServingPolicy(default_version=1))

    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()
        (store / "m" / "1").rmdir()
        await registry.refresh()
        assert registry.get("m").version == 2
        assert "pinned version 1 is not available" in (registry.serving("m").note or "")

    in_loop(store, FakeLoader(), body)


# ---- store faults ------------------------------------------------------------------------


def test_a_failed_version_is_retried_once_its_files_change(store: Path) -> None:
    loader = FakeLoader()
    add(store, "good", 1)
    loader.broken.add(add(store, "good", 2))  # As if still being copied in.

    async def body(registry: ModelRegistry) -> None:
        await registry.refresh()
        assert registry.states("good")[2].state is LoadState.FAILED
        await registry.refresh()
        assert [folder.name for folder in loader.loads].count("2") == 1  # Unchanged files: not retried.
        loader.broken.clear()
        (store / "good" / "2" / "model.keras").write_bytes(b"complete now")
        await registry.refresh()
        assert registry.get("good").version == 2

    in_loop(store, loader, body)


def test_an_unreadable_model_folder_does_not_stop_the_others(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    add(store, "good", 1)
    add(store, "fair", 1)
    real = artifacts.list_versions

    def unreadable_fair(models_dir: Path, name: str) -> list[int]:
        if name == "fair" and unreadable:
            raise PermissionError(13, "Permission denied")
        return real(models_dir, name)

    unreadable = False
    monkeypatch.setattr(artifacts, "list_versions", unreadable_fair)

    async def body(registry: ModelRegistry) -> None:
        nonlocal unreadable
        await registry.refresh()
        unreadable = True
        add(store, "good", 2)
        await registry.refresh()
        assert registry.get("good").version == 2  # The readable model still picks up new versions.
        assert registry.get("fair").version == 1  # The unreadable one keeps serving what it had...
        assert "Permission denied" in (registry.serving("fair").note or "")  # ...and says why.
        assert str(store) not in (registry.serving("fair").note or "")

    in_loop(store, FakeLoader(), body)
