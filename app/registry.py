"""Which model versions are served and loaded, kept in step with the model store.

The registry is the app's one source of truth: predictions, model cards and
comparisons all read the versions it holds, never the disk directly. It scans
MODELS_DIR (through `training.core.artifacts`, which owns the layout) and reads each
version's records (JSON, no weights), so every servable version has a card and takes
part in choosing the default. Loading into memory is lazy, as in Triton's explicit
mode: at each scan the default version of each model and every labelled or pinned one
are loaded (the start is ready once they are); any other version loads on its first
request, one load however many requests ask at once, and the least recently used of
those is unloaded beyond MAX_LOADED_VERSIONS per model, never while it is answering.
A loaded version is published by replacing one dict entry: a request sees the old set
or the new set, never a half-loaded model. A version that fails to load is remembered
with its error and never displaces a working one. The reader and loader are injected,
so all of this is tested with fakes in milliseconds (tests/app/test_registry.py).

Which versions may serve and which one answers by default follows each model's serving
policy (`models/<name>/serving.json`, re-read at every scan) and the promotion gate: a
new version more than PROMOTION_MARGIN_POINTS below the one it would replace is held
back, reachable only by explicit version or label.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import numpy as np

from app.backends import Backend, batch_size
from app.batching import MicroBatcher
from app.config import Settings
from app.errors import ModelNotFound, ModelNotReady
from app.inference import NO_STATISTICS, Loader, Novelty, make_loader
from training.core import artifacts, policy, records
from training.core import runs as run_store

logger = logging.getLogger(__name__)


class LoadState(StrEnum):
    AVAILABLE = "available"  # Readable and in the policy: loads on its first request.
    LOADING = "loading"
    LOADED = "loaded"  # In memory, answering.
    FAILED = "failed"
    UNLOADED = "unloaded"  # In the store, but the serving policy does not serve it.


SERVABLE = (LoadState.AVAILABLE, LoadState.LOADING, LoadState.LOADED)


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
    metadata: records.Metadata | None = None
    files: tuple[tuple[str, int, int], ...] = ()  # A failed version is retried when these change.
    backend: Backend | None = None  # The runtime serving it, once available.
    refused: dict[str, str] = field(default_factory=dict)  # Faster backends that did not pass, and why.
    novelty: Novelty | None = None  # Its novelty threshold, or why it answers no score, once loaded.


@dataclass
class LoadedModel:
    artifact: artifacts.Artifact
    batcher: MicroBatcher  # Owns the forward pass: uint8 (N, 32, 32, 3) -> answer rows (N, 10 or 11).
    novelty: Novelty = NO_STATISTICS
    leases: int = 0  # Requests answering with it now: it is never unloaded to make room while above 0.
    last_used: float = field(default_factory=time.monotonic)

    @property
    def name(self) -> str:
        return self.artifact.name

    @property
    def version(self) -> int:
        return self.artifact.version

    @property
    def metadata(self) -> records.Metadata:
        return self.artifact.metadata

    @property
    def class_names(self) -> list[str]:
        return self.artifact.metadata.class_names

    async def predict_all(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Each image through the micro-batcher, sharing forward passes with all other traffic; rows in order."""
        return np.stack(await asyncio.gather(*(self.batcher.predict(image) for image in images)))


Reader = Callable[[Path], artifacts.Artifact]


class ModelRegistry:
    def __init__(
        self,
        settings: Settings,
        loader: Loader | None = None,
        executor: Executor | None = None,
        reader: Reader = artifacts.load_artifact,
    ) -> None:
        self.settings = settings
        self._loader = loader or make_loader(settings.backend_options())
        self._reader = reader
        self._artifacts: dict[tuple[str, int], artifacts.Artifact] = {}  # Every servable version's records.
        self._loaded: dict[tuple[str, int], LoadedModel] = {}
        self._loading: dict[tuple[str, int], asyncio.Future[LoadedModel]] = {}
        self._states: dict[str, dict[int, VersionState]] = {}
        self._serving: dict[str, Serving] = {}
        self._valid_policies: dict[str, tuple[policy.ServingPolicy, str]] = {}  # The last valid one, and when.
        self._runs: dict[str, dict[str, list[run_store.RunRecord]]] = {}  # Repeated runs, for the statistics.
        # One thread runs every forward pass: the runtimes parallelise inside each op. Loads get their own,
        # so a version loading on demand never stalls the answers of the others.
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._load_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="load")
        self.ready = asyncio.Event()
        self._refresh_lock = asyncio.Lock()

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

    def loaded_versions(self, name: str) -> list[int]:
        return sorted(version for (model, version) in self._loaded if model == name)

    def servable_versions(self, name: str) -> list[int]:
        """Versions that answer a request: loaded, or loaded by it."""
        return sorted(version for version, state in self._states.get(name, {}).items() if state.state in SERVABLE)

    def default_model(self) -> str | None:
        configured = self.settings.default_model
        if configured and self.serving(configured).default_version is not None:
            return configured
        scored = [(self.artifact(name).metadata.test_accuracy, name) for name in self._served_names()]
        return max(scored)[1] if scored else None

    def resolve(self, name: str | None = None, version: int | None = None, label: str | None = None) -> tuple[str, int]:
        """(model, version) a request addresses; raises ModelNotFound or ModelNotReady.

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
            if default is None:
                raise ModelNotReady(f"model {name!r} has no loaded version yet")
            return name, default
        state = self._states[name].get(version)
        if state is None:
            raise ModelNotFound(f"model {name!r} has no version {version}")
        if state.state not in SERVABLE:
            raise ModelNotReady(f"model {name!r} version {version} is {state.state}: {state.error or 'not ready'}")
        return name, version

    def artifact(
        self, name: str | None = None, version: int | None = None, label: str | None = None
    ) -> artifacts.Artifact:
        """A servable version's records (card, metrics, plots), loaded into memory or not."""
        return self._artifacts[self.resolve(name, version, label)]

    def get(self, name: str | None = None, version: int | None = None, label: str | None = None) -> LoadedModel:
        """The version, if it is in memory now (readiness, status); raises ModelNotReady if it is not."""
        key = self.resolve(name, version, label)
        loaded = self._loaded.get(key)
        if loaded is None:
            raise ModelNotReady(f"model {key[0]!r} version {key[1]} is {self._states[key[0]][key[1]].state}")
        return loaded

    @contextlib.asynccontextmanager
    async def serve(
        self, name: str | None = None, version: int | None = None, label: str | None = None
    ) -> AsyncIterator[LoadedModel]:
        """The version to answer with, loaded first if need be (waiting up to VERSION_LOAD_TIMEOUT_SECONDS,
        then ModelNotReady), and held: it is not unloaded to make room until the block ends."""
        key = self.resolve(name, version, label)
        loaded = self._loaded.get(key)
        if loaded is None:
            timeout = self.settings.version_load_timeout_seconds
            try:
                loaded = await asyncio.wait_for(asyncio.shield(self._load_once(*key)), timeout)
            except TimeoutError:
                message = f"model {key[0]!r} version {key[1]} is still loading after {timeout:g} s; retry"
                raise ModelNotReady(message) from None
            except Exception as error:
                raise ModelNotReady(f"model {key[0]!r} version {key[1]} failed to load: {error}") from error
        loaded.leases += 1
        loaded.last_used = time.monotonic()
        try:
            yield loaded
        finally:
            loaded.leases -= 1

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
        """Read versions that appeared, drop those that went, choose each default, load what must be.
        One scan at a time: the poll and a SIGHUP may ask at once."""
        async with self._refresh_lock:
            await self._refresh()

    async def _refresh(self) -> None:
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
                    self._states[name].pop(version, None)  # First, so that no request is routed to it.
                    self._artifacts.pop((name, version), None)
                    await self._unload(name, version)
            if not self._states[name]:
                del self._states[name]
                self._serving.pop(name, None)
        for name, versions in on_disk.items():
            await self._refresh_model(name, versions)
            self._runs[name] = self._read_runs(name)
        for name in set(self._runs) - set(on_disk) - set(unreadable):
            del self._runs[name]

    async def _refresh_model(self, name: str, versions: list[int]) -> None:
        policy, policy_error = self._read_policy(name)
        wanted = policy.wanted(versions)
        states = self._states.setdefault(name, {})
        for version in versions:
            folder = artifacts.version_path(self.settings.models_dir, name, version)
            if version not in wanted:
                states[version] = VersionState(
                    version, LoadState.UNLOADED, error=f"not in the serving policy ({policy.load})"
                )
                self._artifacts.pop((name, version), None)
                await self._unload(name, version)
            elif self._needs_read(states.get(version), folder):
                self._read(name, version, folder)
        # The decision is published only once every version it keeps in memory is loaded: until then
        # requests follow the previous one, so a new default that fails to load is never routed to.
        while True:
            serving = self._decide(name, policy, policy_error)
            missing = [version for version in self._pinned(name, serving) if (name, version) not in self._loaded]
            if not missing:
                self._serving[name] = serving
                break
            for version in missing:
                with contextlib.suppress(Exception):  # Recorded as FAILED by _load; the gate decides without it.
                    await self._load_once(name, version)
        await self._make_room(name)

    def _pinned(self, name: str, serving: Serving) -> list[int]:
        """Versions kept in memory: the default, and every labelled or pinned one that can serve."""
        chosen = {*serving.policy.labels.values(), serving.policy.default_version, serving.default_version}
        states = self._states.get(name, {})
        return sorted(v for v in chosen if v is not None and v in states and states[v].state in SERVABLE)

    def _read(self, name: str, version: int, folder: Path) -> None:
        files = artifacts.signature(folder)
        try:
            artifact = self._reader(folder)
        except Exception as error:  # An unreadable version must never take the service down.
            self._fail(name, version, error, files)
            return
        self._artifacts[(name, version)] = artifact
        self._states[name][version] = VersionState(version, LoadState.AVAILABLE, metadata=artifact.metadata)

    def _fail(self, name: str, version: int, error: Exception, files: tuple[tuple[str, int, int], ...]) -> None:
        logger.warning("model %s version %s failed to load: %s", name, version, error)
        # Paths relative to the store: the server's directory layout is nobody else's business.
        message = f"{type(error).__name__}: {error}".replace(f"{self.settings.models_dir}/", "")
        self._artifacts.pop((name, version), None)
        self._states[name][version] = VersionState(version, LoadState.FAILED, error=message, files=files)

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
                    except records.InvalidArtifact as error:
                        logger.warning("run %s/%s/%s is unreadable: %s", name, group, seed, error)
                        continue
                groups.setdefault(group, []).append(record)
        return groups

    @staticmethod
    def _needs_read(state: VersionState | None, folder: Path) -> bool:
        """New, unloaded by the policy before, or failed with files that changed since (a copy completed)."""
        if state is None or state.state is LoadState.UNLOADED:
            return True
        return state.state is LoadState.FAILED and artifacts.signature(folder) != state.files

    def _read_policy(self, name: str) -> tuple[policy.ServingPolicy, str | None]:
        """The model's serving policy, and why it is not the file's when the file is invalid: then the last
        valid policy stays in force (a truncated or mistyped file must not move the default or drop the
        labels, as TF Serving keeps its last good configuration), or the default one if none was valid yet."""
        try:
            found = policy.load_policy(self.settings.models_dir, name) or policy.ServingPolicy()
        except records.InvalidArtifact as error:  # Reported in GET /models.
            if name in self._valid_policies:
                kept, since = self._valid_policies[name]
                return kept, f"{error}; keeping the last valid policy from {since}"
            return policy.ServingPolicy(), f"{error}; using the default policy (every version, gate on)"
        if self._valid_policies.get(name, (None, ""))[0] != found:
            self._valid_policies[name] = (found, datetime.now(UTC).isoformat(timespec="seconds"))
        return found, None

    def _decide(self, name: str, policy: policy.ServingPolicy, policy_error: str | None) -> Serving:
        accuracies = {
            version: self._artifacts[(name, version)].metadata.test_accuracy for version in self.servable_versions(name)
        }
        margin = self.settings.promotion_margin_points / 100
        default, held_back, note = choose_default(accuracies, policy.default_version, margin)
        return Serving(policy, policy_error, default, held_back, note)

    def _load_once(self, name: str, version: int) -> asyncio.Future[LoadedModel]:
        """The load of a version, started now or already under way: concurrent requests share one."""
        key = (name, version)
        if key in self._loaded:
            future: asyncio.Future[LoadedModel] = asyncio.get_running_loop().create_future()
            future.set_result(self._loaded[key])
            return future
        if key not in self._loading:
            self._loading[key] = asyncio.ensure_future(self._load(name, version))
            self._loading[key].add_done_callback(lambda _: self._loading.pop(key, None))
        return self._loading[key]

    async def _load(self, name: str, version: int) -> LoadedModel:
        states = self._states[name]
        states[version] = replace(states[version], state=LoadState.LOADING)
        folder = artifacts.version_path(self.settings.models_dir, name, version)
        files = artifacts.signature(folder)
        try:
            servable = await asyncio.get_running_loop().run_in_executor(self._load_executor, self._loader, folder)
        except Exception as error:  # A broken artifact must never take the service down.
            if self._still_loading(name, version):
                self._fail(name, version, error, files)
            raise
        if not self._still_loading(name, version):  # Removed, or dropped by the policy, meanwhile.
            raise ModelNotReady(f"model {name!r} version {version} was removed while it loaded")
        batcher = MicroBatcher(
            servable.predict,
            self.executor,
            batch_size(servable.backend, self.settings.backend_options()),
            self.settings.batch_max_wait_ms,
            self.settings.batch_policy,
            self.settings.gil_switch_interval_ms,
        )
        loaded = self._loaded[(name, version)] = LoadedModel(servable.artifact, batcher, servable.novelty)
        self._artifacts[(name, version)] = servable.artifact
        states[version] = VersionState(
            version,
            LoadState.LOADED,
            metadata=servable.artifact.metadata,
            backend=servable.backend,
            refused=servable.refused,
            novelty=servable.novelty,
        )
        # A loaded model is many long-lived Python objects; unfrozen, every full garbage collection
        # walks them all (~180 ms measured with TensorFlow), stalling requests mid-flight.
        gc.freeze()
        logger.info("model %s version %s loaded on %s", name, version, servable.backend)
        for backend, reason in servable.refused.items():
            logger.info("model %s version %s not on %s: %s", name, version, backend, reason)
        await self._make_room(name)
        return loaded

    def _still_loading(self, name: str, version: int) -> bool:
        state = self._states.get(name, {}).get(version)
        return state is not None and state.state is LoadState.LOADING

    async def _make_room(self, name: str) -> None:
        """Unload the least recently used versions beyond MAX_LOADED_VERSIONS, sparing the pinned and the busy."""
        if name not in self._serving:
            return
        spared = set(self._pinned(name, self._serving[name]))
        loaded = [self._loaded[(name, v)] for v in self.loaded_versions(name)]
        excess = len(loaded) - self.settings.max_loaded_versions
        for candidate in sorted(loaded, key=lambda model: model.last_used):
            if excess <= 0:
                break
            if candidate.version in spared or candidate.leases > 0:
                continue
            state = self._states[name][candidate.version]
            self._states[name][candidate.version] = replace(state, state=LoadState.AVAILABLE, backend=None, refused={})
            await self._unload(name, candidate.version)
            excess -= 1

    async def _unload(self, name: str, version: int) -> None:
        loaded = self._loaded.pop((name, version), None)
        if loaded is not None:
            # Callers change its state first; decide again before the first await, so that no request
            # is routed to a version just dropped from the store or the policy.
            if name in self._serving:
                serving = self._serving[name]
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
        self._load_executor.shutdown(wait=False, cancel_futures=True)
