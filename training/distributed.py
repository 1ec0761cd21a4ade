"""Training on several machines: tf.distribute.MultiWorkerMirroredStrategy, configured by TF_CONFIG.

Every worker holds a full copy of the network; each step, each worker computes the
gradients of its shard of the global batch and a ring all-reduce (gRPC, on CPU) sums
them, so every copy applies the same update. The recipe is the single-process one:
the global batch is the recipe's batch (each worker takes 1/N of every batch, from an
identically seeded pipeline), the schedule counts global steps, and the callbacks are
the same Keras callbacks (lookahead, epoch timer, history log), driven by this loop.

Why not `model.fit`: under this strategy it fails in Keras 3 with the TensorFlow backend
(keras-team/keras#20585, "Attempt to convert a value (PerReplica...)"); the step below
is the documented custom-loop form. Dropout masks are drawn per replica, so a 2-worker
run matches a 1-worker run in distribution, not bit for bit (`tests/training/
test_distributed.py` bounds the loss-curve difference); with model_1's dropout switched
off, 1 and 2 workers gave the same loss and weights after 8 steps. BatchNorm normalises each worker's shard with
that shard's statistics (as per-GPU BatchNorm does); this loop does not synchronise its
moving averages, and the version publishes the chief's.

Only the chief writes: the per-epoch backup (in the store's `.checkpoints/`, which must
be shared storage on several machines, as the store itself is), the history and, at the
end, the version. The others read the chief's backup to resume, and publish nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from training.core.staging import staged_dir
from training.pipeline import TrainingData

TF_CONFIG = "TF_CONFIG"
TIMEOUT_ENV = "COLLECTIVE_TIMEOUT_SECONDS"  # How long a step waits for a silent peer before failing.
EPOCH_PREFIX = "epoch-"  # The backup after epoch N is the folder epoch-N, renamed into place whole.
WEIGHTS_FILE = "model.weights.h5"
OPTIMIZER_FILE = "optimizer.npz"


class WorkerFailed(RuntimeError):
    """A peer stopped answering: the run ends without publishing, and resumes when restarted."""


@dataclass(frozen=True)
class Cluster:
    workers: int
    task_type: str
    task_index: int
    has_chief: bool = False

    @property
    def is_chief(self) -> bool:
        """TF's convention: the `chief` task, or worker 0 when the cluster names no chief."""
        return self.task_type == "chief" or (self.task_type == "worker" and self.task_index == 0 and not self.has_chief)

    def describe(self) -> str:
        role = "chief" if self.is_chief else "worker"
        return f"{role} ({self.task_type} {self.task_index} of {self.workers} workers)"


def cluster_from_env() -> Cluster | None:
    """The cluster TF_CONFIG describes, or None when it is unset (a single-process run)."""
    raw = os.environ.get(TF_CONFIG)
    if not raw:
        return None
    config = json.loads(raw)
    members = config.get("cluster", {})
    task = config.get("task", {})
    count = sum(len(members.get(kind, [])) for kind in ("chief", "worker"))
    if count < 1 or task.get("type") not in ("chief", "worker"):
        raise ValueError(f"{TF_CONFIG} must list chief/worker addresses and this task's type and index: {raw}")
    return Cluster(count, task["type"], int(task.get("index", 0)), has_chief=bool(members.get("chief")))


def make_strategy() -> tf.distribute.Strategy:
    """Must run before any other TensorFlow operation in the process (collectives are set up here)."""
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING,
        timeout_seconds=float(os.environ.get(TIMEOUT_ENV, "120")),
    )
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Wait until every worker gets here (one tiny all-reduce)."""
    strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)


def fit(
    model: keras.Model,
    data: TrainingData,
    epochs: int,
    label_smoothing: float,
    strategy: tf.distribute.Strategy,
    callbacks: list[keras.callbacks.Callback],
    backup: Path,
    is_chief: bool,
    validation: tf.data.Dataset | None = None,
) -> None:
    """The recipe's epochs under `strategy`, resuming from the chief's backup in `backup`."""
    optimizer = model.optimizer
    per_example = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing, reduction=None)
    step = _train_step(model, optimizer, per_example, strategy)
    initial_epoch = _restore(model, optimizer, backup)
    history = keras.callbacks.CallbackList(callbacks, model=model)
    distributed = strategy.experimental_distribute_dataset(_sharded_by_data(data.batches))
    iterator = iter(distributed) if data.endless else None
    history.on_train_begin()
    try:
        for epoch in range(initial_epoch, epochs):
            history.on_epoch_begin(epoch)
            started = time.perf_counter()
            if not data.endless:
                iterator = iter(distributed)
            loss_sum, correct, seen = 0.0, 0.0, 0.0
            for batch in range(data.steps_per_epoch):
                loss, hits, count = step(iterator)
                loss_sum, correct, seen = (
                    loss_sum + float(loss) * float(count),
                    correct + float(hits),
                    seen + float(count),
                )
                history.on_train_batch_end(batch)
            logs = {"loss": loss_sum / max(seen, 1.0), "accuracy": correct / max(seen, 1.0)}  # Per image, as fit.
            trained = time.perf_counter()
            if validation is not None:
                history.on_test_begin()
                logs |= _validate(model, per_example, validation)
            # For this log line; EpochTimer puts the same figures into the history it hands CSVLogger.
            logs |= {"train_seconds": trained - started, "seconds": time.perf_counter() - started}
            history.on_epoch_end(epoch, logs)
            if is_chief:
                _save(model, optimizer, backup, epoch + 1)
            print(f"Epoch {epoch + 1}/{epochs} - " + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()), flush=True)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError) as error:
        raise WorkerFailed(
            f"a worker of the cluster stopped answering ({type(error).__name__}); no version was published. "
            "Start every worker again with the same command to resume from the last completed epoch."
        ) from error
    history.on_train_end()


def _train_step(model: keras.Model, optimizer: Any, per_example: Any, strategy: tf.distribute.Strategy) -> Any:
    @tf.function
    def step(iterator: Any) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        def replica_step(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
            # This step's global batch (an epoch's last batch may be short), as a single process sees it.
            count = tf.cast(tf.shape(images)[0], tf.float32)
            global_batch = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, count)
            with tf.GradientTape() as tape:
                probabilities = model(images, training=True)
                # Summed over this shard, divided by the global batch: the replicas' sum is the batch mean.
                loss = tf.reduce_sum(per_example(labels, probabilities)) / global_batch
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
            hits = tf.reduce_sum(tf.cast(tf.argmax(probabilities, 1) == tf.argmax(labels, 1), tf.float32))
            return loss, hits, count

        results = strategy.run(replica_step, args=next(iterator))
        return tuple(strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in results)

    return step


def _sharded_by_data(batches: tf.data.Dataset) -> tf.data.Dataset:
    """Every worker runs the same seeded pipeline and keeps its part of each global batch."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return batches.with_options(options)


def _validate(model: keras.Model, per_example: Any, validation: tf.data.Dataset) -> dict[str, float]:
    """Test loss and accuracy with this worker's copy of the weights (identical on every worker)."""
    losses, hits, seen = [], 0.0, 0
    for images, labels in validation:
        probabilities = model(images, training=False)
        losses.append(per_example(labels, probabilities).numpy())
        hits += float(np.sum(np.argmax(probabilities, 1) == np.argmax(labels, 1)))
        seen += len(labels)
    return {"val_loss": float(np.mean(np.concatenate(losses))), "val_accuracy": hits / seen}


def _save(model: keras.Model, optimizer: Any, backup: Path, completed_epochs: int) -> None:
    """Weights and optimizer state in a staging folder, renamed to epoch-N in one step: a kill at
    any point leaves the previous epoch's complete backup, or this one's. Older ones are removed."""
    with staged_dir(backup / f"{EPOCH_PREFIX}{completed_epochs}") as staging:
        model.save_weights(str(staging / WEIGHTS_FILE))
        with (staging / OPTIMIZER_FILE).open("wb") as handle:
            np.savez(handle, *[np.asarray(variable) for variable in optimizer.variables])
    for older in _backups(backup)[:-1]:
        shutil.rmtree(older, ignore_errors=True)


def _backups(backup: Path) -> list[Path]:
    """Complete per-epoch backups, oldest first."""
    found = [p for p in backup.glob(f"{EPOCH_PREFIX}*") if p.name[len(EPOCH_PREFIX) :].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(EPOCH_PREFIX) :]))


def _restore(model: keras.Model, optimizer: Any, backup: Path) -> int:
    """The epoch to start at: after the chief's last complete backup, or 0. Every worker loads the
    same files, so every copy of the network starts identical."""
    backups = _backups(backup)
    if not backups:
        return 0
    latest = backups[-1]
    model.load_weights(str(latest / WEIGHTS_FILE))
    with np.load(latest / OPTIMIZER_FILE) as saved:
        for variable, value in zip(optimizer.variables, [saved[key] for key in saved.files], strict=True):
            variable.assign(value)
    completed = int(latest.name[len(EPOCH_PREFIX) :])
    print(f"Resuming the distributed run after epoch {completed}", flush=True)
    return completed
