"""Which model versions are loaded, and keeping that in step with the model store.

The registry is the app's one source of truth: predictions, model cards and
comparisons all read the versions it holds, never the disk directly. It scans
MODELS_DIR (through `training.core.artifacts`, which owns the layout), loads each
version with its loader in the inference thread, and only then publishes it, by
replacing one dict entry: a request sees the old set or the new set, never a
half-loaded model. A version that fails to load is remembered with its error and
never displaces a working one. The loader is injected, so all of this is tested
with a fake one in milliseconds (tests/app/test_registry.py).

Which versions are loaded and which one answers by default follows each model's
serving policy (`models/<name>/serving.json`, re-read at every scan) and the promotion
gate: a new version more than PROMOTION_MARGIN_POINTS below the one it would replace
is loaded but held back, reachable only by explicit version or label.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

import numpy as np

from app.backends import Backend, batch_size
from app.batching import MicroBatcher
from app.config import Settings
from app.errors import ModelNotFound, ModelNotReady
from app.inference import Loader, make_loader
from training.core import artifacts, policy
from training.core import runs as run_store

logger = logging.getLogger(__name__)


class LoadState(StrEnum):
    LOADING = "loading"
    AVAILABLE = "available"
    FAILED = "failed"
    UNLOADED = "unloaded"  # In the store, but the serving policy does not load it.


@dataclass(frozen=True)
class Serving:
    """What a model's policy and the gate decided at the last scan."""

    policy: policy.ServingPolicy = field(default_factory=policy.ServingPolicy)
    policy_error: str | None = None  # An invalid serving.json: reported, and the default policy used.
    default_version: int | None = None
    held_back: dict[int, str] = field(default_factory=dict)  # Version -> why the gate did not promote it.
    note: str | None = None  # For example a pinned version that is not available.


def choose_default(
    accuracies: dict[int, float], pinned: int | None, margin: float
) -> tuple[int | None, dict[int, str], str | None]:
    """(default version, held-back versions with reasons, a note) for the available versions.

    A pin wins. Otherwise versions are promoted oldest to newest, each replacing the
    current default unless its accuracy is more than `margin` below it. Stateless: a
    restart reaches the same answer.
    """
    if not accuracies:
        return None, {}, None
    if pinned is not None and pinned in accuracies:
        return pinned, {}, None
    note = f"pinned version {pinned} is not available; the gate chose instead" if pinned is not None else None
    versions = sorted(accuracies)
    default, held_back = versions[0], {}
    for version in versions[1:]:
        if accuracies[version] < accuracies[default] - margin:
            held_back[version] = (
                f"held back by the promotion gate: test accuracy {accuracies[version]:.2%} is more than "
                f"{margin * 100:g} points below version {default}'s {accuracies[default]:.2%}"
            )
        else:
            default = version
    return default, held_back, note


@dataclass(frozen=True)
class VersionState:
    version: int
    state: LoadState
    error: str | None = None
    metadata: artifacts.Metadata | None = None
    files: tuple[tuple[str, int, int], ...] = ()  # A failed version is retried when these change.
    backend: Backend | None = None  # The runtime serving it, once available.
    refused: dict[str, str] = field(default_factory=dict)  # Faster backends that did not pass, and why.


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

    async def predict_all(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Each image through the micro-batcher, sharing forward passes with all other traffic; rows in order."""
        return np.stack(await asyncio.gather(*(self.batcher.predict(image) for image in images)))


class ModelRegistry:
    def __init__(self, settings: Settings, loader: Loader | None = None, executor: Executor | None = None) -> None:
        self.settings = settings
        self._loader = loader or make_loader(settings.backend_options())
        self._loaded: dict[tuple[str, int], LoadedModel] = {}
        self._states: dict[str, dict[int, VersionState]] = {}
        self._serving: dict[str, Serving] = {}
        self._runs: dict[str, dict[str, list[run_store.RunRecord]]] = {}  # Repeated runs, for the statistics.
        # One thread runs every forward pass and load: TensorFlow parallelises inside each op.
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self.ready = asyncio.Event()

    # ---- lookups used by the endpoints -------------------------------------------------
    def model_names(self) -> list[str]:
        return sorted(self._states)

    def states(self, name: str) -> dict[int, VersionState]:
        return dict(self._states.get(name, {}))

    def serving(self, name: str) -> Serving:
        return self._serving.get(name, Serving())

    def runs(self, name: str) -> dict[str, list[run_store.RunRecord]]:
        """The model's recorded run groups (`python -m training repeat`), group -> runs by seed."""
        return {group: list(records) for group, records in self._runs.get(name, {}).items()}

    def available_versions(self, name: str) -> list[int]:
        return sorted(version for (model, version) in self._loaded if model == name)

    def default_model(self) -> str | None:
        configured = self.settings.default_model
        if configured and self.available_versions(configured):
            return configured
        scored = [(self.get(name).metadata.test_accuracy, name) for name in self._served_names()]
        return max(scored)[1] if scored else None

    def get(self, name: str | None = None, version: int | None = None, label: str | None = None) -> LoadedModel:
        """The loaded model to answer with; raises ModelNotFound or ModelNotReady.

        By default the model's default version (policy pin or promotion gate); `version`
        or `label` address one explicitly (both: the label must name that version).
        """
        if name is None:
            name = self.default_model()
            if name is None:
                raise ModelNotReady("no model is loaded yet")
        if name not in self._states:
            raise ModelNotFound(f"model {name!r} not found")
        if label is not None:
            labelled = self._label_version(name, label)
            if version is not None and version != labelled:
                raise ModelNotFound(f"model {name!r} label {label!r} names version {labelled}, not {version}")
            version = labelled
        if version is None:
            default = self.serving(name).default_version
            chosen = self._loaded.get((name, default)) if default is not None else None
            if chosen is None:
                raise ModelNotReady(f"model {name!r} has no loaded version yet")
            return chosen
        loaded = self._loaded.get((name, version))
        if loaded is None:
            state = self._states[name].get(version)
            if state is None:
                raise ModelNotFound(f"model {name!r} has no version {version}")
            raise ModelNotReady(f"model {name!r} version {version} is {state.state}: {state.error or 'not ready'}")
        return loaded

    def _label_version(self, name: str, label: str) -> int:
        labels = self.serving(name).policy.labels
        if label not in labels:
            known = ", ".join(sorted(labels)) or "none"
            raise ModelNotFound(f"model {name!r} has no label {label!r} (labels: {known})")
        return labels[label]

    def _served_names(self) -> list[str]:
        return sorted(name for name, serving in self._serving.items() if serving.default_version is not None)

    # ---- keeping in step with the store ------------------------------------------------
    async def refresh(self) -> None:
        """Load versions the policy wants that appeared, unload the rest, then choose each default."""
        models_dir = self.settings.models_dir
        on_disk, unreadable = artifacts.scan(models_dir)
        for name, problem in unreadable.items():  # Keep serving what is loaded; say why nothing changes.
            logger.warning("model store: %s", problem)
            if name in self._serving:
                self._serving[name] = replace(self._serving[name], note=problem)
        for name in list(self._states):
            if name in unreadable:
                continue
            for version in list(self._states[name]):
                if version not in on_disk.get(name, []):
                    await self._unload(name, version)
                    self._states[name].pop(version, None)
            if not self._states[name]:
                del self._states[name]
                self._serving.pop(name, None)
        for name, versions in on_disk.items():
            policy, policy_error = self._read_policy(name)
            wanted = policy.wanted(versions)
            states = self._states.setdefault(name, {})
            for version in versions:
                if version in wanted and self._needs_load(states.get(version), models_dir / name / str(version)):
                    await self._load(name, version, states)
                elif version not in wanted:
                    await self._unload(name, version)
                    states[version] = VersionState(
                        version, LoadState.UNLOADED, error=f"not in the serving policy ({policy.load})"
                    )
            self._serving[name] = self._decide(name, policy, policy_error)
            self._runs[name] = self._read_runs(name)
        for name in set(self._runs) - set(on_disk) - set(unreadable):
            del self._runs[name]

    def _read_runs(self, name: str) -> dict[str, list[run_store.RunRecord]]:
        """Recorded runs, read once each: runs are never rewritten. An unreadable one is skipped and logged."""
        known = {
            (record.group, record.seed): record for records in self._runs.get(name, {}).values() for record in records
        }
        groups: dict[str, list[run_store.RunRecord]] = {}
        for group, seeds in run_store.list_runs(self.settings.models_dir, name).items():
            for seed in seeds:
                record = known.get((group, seed))
                if record is None:
                    try:
                        record = run_store.load_run(self.settings.models_dir, name, group, seed)
                    except artifacts.InvalidArtifact as error:
                        logger.warning("run %s/%s/%s is unreadable: %s", name, group, seed, error)
                        continue
                groups.setdefault(group, []).append(record)
        return groups

    @staticmethod
    def _needs_load(state: VersionState | None, folder: Path) -> bool:
        """New, unloaded by the policy before, or failed with files that changed since (a copy completed)."""
        if state is None or state.state is LoadState.UNLOADED:
            return True
        return state.state is LoadState.FAILED and artifacts.signature(folder) != state.files

    def _read_policy(self, name: str) -> tuple[policy.ServingPolicy, str | None]:
        try:
            return policy.load_policy(self.settings.models_dir, name) or policy.ServingPolicy(), None
        except artifacts.InvalidArtifact as error:  # Reported in GET /models; the default policy serves.
            return policy.ServingPolicy(), f"{error}; using the default policy (every version, gate on)"

    def _decide(self, name: str, policy: policy.ServingPolicy, policy_error: str | None) -> Serving:
        accuracies = {
            version: self._loaded[(name, version)].metadata.test_accuracy for version in self.available_versions(name)
        }
        margin = self.settings.promotion_margin_points / 100
        default, held_back, note = choose_default(accuracies, policy.default_version, margin)
        return Serving(policy, policy_error, default, held_back, note)

    async def _load(self, name: str, version: int, states: dict[int, VersionState]) -> None:
        states[version] = VersionState(version, LoadState.LOADING)
        folder = self.settings.models_dir / name / str(version)
        files = artifacts.signature(folder)
        loop = asyncio.get_running_loop()
        try:
            servable = await loop.run_in_executor(self.executor, self._loader, folder)
        except Exception as error:  # A broken artifact must never take the service down.
            logger.warning("model %s version %s failed to load: %s", name, version, error)
            # Paths relative to the store: the server's directory layout is nobody else's business.
            message = f"{type(error).__name__}: {error}".replace(f"{self.settings.models_dir}/", "")
            states[version] = VersionState(version, LoadState.FAILED, error=message, files=files)
            return
        batcher = MicroBatcher(
            servable.predict,
            self.executor,
            batch_size(servable.backend, self.settings.backend_options()),
            self.settings.batch_max_wait_ms,
            self.settings.batch_policy,
        )
        self._loaded[(name, version)] = LoadedModel(servable.artifact, batcher)
        states[version] = VersionState(
            version,
            LoadState.AVAILABLE,
            metadata=servable.artifact.metadata,
            backend=servable.backend,
            refused=servable.refused,
        )
        # TensorFlow and a loaded model are ~300,000 long-lived Python objects; unfrozen, every full
        # garbage collection walks them all (~180 ms measured here), stalling requests mid-flight.
        gc.freeze()
        logger.info("model %s version %s loaded on %s", name, version, servable.backend)
        for backend, reason in servable.refused.items():
            logger.info("model %s version %s not on %s: %s", name, version, backend, reason)

    async def _unload(self, name: str, version: int) -> None:
        loaded = self._loaded.pop((name, version), None)
        if loaded is not None:
            # Decide again before the first await, so no request is routed to the version just dropped.
            serving = self.serving(name)
            self._serving[name] = self._decide(name, serving.policy, serving.policy_error)
            await loaded.batcher.close()
            gc.unfreeze()  # Let the collector reclaim the dropped model; the next load freezes again.
            logger.info("model %s version %s unloaded", name, version)

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
