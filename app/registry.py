"""Which model versions are loaded, and keeping that in step with the model store.

The registry is the app's one source of truth: predictions, model cards and
comparisons all read the versions it holds, never the disk directly. It scans
MODELS_DIR (through `training.core.artifacts`, which owns the layout), loads each
version with its loader in the inference thread, and only then publishes it, by
replacing one dict entry: a request sees the old set or the new set, never a
half-loaded model. A version that fails to load is remembered with its error and
never displaces a working one. The loader is injected, so all of this is tested
with a fake one in milliseconds (tests/app/test_registry.py).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

from app.batching import MicroBatcher
from app.config import Settings
from app.errors import ModelNotFound, ModelNotReady
from app.inference import Loader, load_servable
from training.core import artifacts

logger = logging.getLogger(__name__)


class LoadState(StrEnum):
    LOADING = "loading"
    AVAILABLE = "available"
    FAILED = "failed"


@dataclass(frozen=True)
class VersionState:
    version: int
    state: LoadState
    error: str | None = None
    metadata: artifacts.Metadata | None = None


@dataclass(frozen=True)
class LoadedModel:
    artifact: artifacts.Artifact
    batcher: MicroBatcher  # Owns the forward pass: uint8 (N, 32, 32, 3) -> probabilities (N, 10).

    @property
    def name(self) -> str:
        return self.artifact.name

    @property
    def version(self) -> int:
        return self.artifact.version

    @property
    def metadata(self) -> artifacts.Metadata:
        return self.artifact.metadata

    @property
    def class_names(self) -> list[str]:
        return self.artifact.metadata.class_names


class ModelRegistry:
    def __init__(self, settings: Settings, loader: Loader = load_servable, executor: Executor | None = None) -> None:
        self.settings = settings
        self._loader = loader
        self._loaded: dict[tuple[str, int], LoadedModel] = {}
        self._states: dict[str, dict[int, VersionState]] = {}
        # One thread runs every forward pass and load: TensorFlow parallelises inside each op.
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self.ready = asyncio.Event()

    # ---- lookups used by the endpoints -------------------------------------------------
    def model_names(self) -> list[str]:
        return sorted(self._states)

    def states(self, name: str) -> dict[int, VersionState]:
        return dict(self._states.get(name, {}))

    def available_versions(self, name: str) -> list[int]:
        return sorted(version for (model, version) in self._loaded if model == name)

    def default_model(self) -> str | None:
        configured = self.settings.default_model
        if configured and self.available_versions(configured):
            return configured
        scored = [(self._newest(name).metadata.test_accuracy, name) for name in self._served_names()]
        return max(scored)[1] if scored else None

    def get(self, name: str | None = None, version: int | None = None) -> LoadedModel:
        """The loaded model to answer with; raises ModelNotFound or ModelNotReady."""
        if name is None:
            name = self.default_model()
            if name is None:
                raise ModelNotReady("no model is loaded yet")
        if name not in self._states:
            raise ModelNotFound(f"model {name!r} not found")
        if version is None:
            if not self.available_versions(name):
                raise ModelNotReady(f"model {name!r} has no loaded version yet")
            return self._newest(name)
        loaded = self._loaded.get((name, version))
        if loaded is None:
            state = self._states[name].get(version)
            if state is None:
                raise ModelNotFound(f"model {name!r} has no version {version}")
            raise ModelNotReady(f"model {name!r} version {version} is {state.state}: {state.error or 'not ready'}")
        return loaded

    def _served_names(self) -> list[str]:
        return sorted({name for name, _ in self._loaded})

    def _newest(self, name: str) -> LoadedModel:
        return self._loaded[(name, self.available_versions(name)[-1])]

    # ---- keeping in step with the store ------------------------------------------------
    async def refresh(self) -> None:
        """Load versions that appeared, forget versions that were deleted."""
        models_dir = self.settings.models_dir
        on_disk = {name: artifacts.list_versions(models_dir, name) for name in artifacts.list_models(models_dir)}
        for name, versions in on_disk.items():
            states = self._states.setdefault(name, {})
            for version in versions:
                if version not in states:
                    await self._load(name, version, states)
        for name in list(self._states):
            for version in list(self._states[name]):
                if version not in on_disk.get(name, []):
                    await self._unload(name, version)
            if not self._states[name]:
                del self._states[name]

    async def _load(self, name: str, version: int, states: dict[int, VersionState]) -> None:
        states[version] = VersionState(version, LoadState.LOADING)
        folder = artifacts.version_dir(self.settings.models_dir, name, version)
        loop = asyncio.get_running_loop()
        try:
            servable = await loop.run_in_executor(self.executor, self._loader, folder)
        except Exception as error:  # A broken artifact must never take the service down.
            logger.warning("model %s version %s failed to load: %s", name, version, error)
            states[version] = VersionState(version, LoadState.FAILED, error=f"{type(error).__name__}: {error}")
            return
        batcher = MicroBatcher(
            servable.predict, self.executor, self.settings.batch_max_size, self.settings.batch_max_wait_ms
        )
        self._loaded[(name, version)] = LoadedModel(servable.artifact, batcher)
        states[version] = VersionState(version, LoadState.AVAILABLE, metadata=servable.artifact.metadata)
        # TensorFlow and a loaded model are ~300,000 long-lived Python objects; unfrozen, every full
        # garbage collection walks them all (~180 ms measured here), stalling requests mid-flight.
        gc.freeze()
        logger.info("model %s version %s loaded", name, version)

    async def _unload(self, name: str, version: int) -> None:
        loaded = self._loaded.pop((name, version), None)
        self._states[name].pop(version, None)
        if loaded is not None:
            await loaded.batcher.close()
            gc.unfreeze()  # Let the collector reclaim the dropped model; the next load freezes again.
            logger.info("model %s version %s unloaded (deleted from the store)", name, version)

    async def poll(self) -> None:
        """Rescan forever; started by the app's lifespan when polling is on."""
        while True:
            await asyncio.sleep(self.settings.poll_interval_seconds)
            try:
                await self.refresh()
            except Exception:  # Keep polling whatever one scan ran into.
                logger.exception("rescanning %s failed", self.settings.models_dir)

    async def close(self) -> None:
        for loaded in self._loaded.values():
            await loaded.batcher.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
