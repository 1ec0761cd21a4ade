"""Keras callbacks the training loop adds to `model.fit`."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import keras
import tensorflow as tf


class EpochTimer(keras.callbacks.Callback):
    """Adds wall seconds (training alone and whole epoch) to each epoch's logs, for CSVLogger."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()
        self._train_end: float | None = None

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        end = time.perf_counter()
        if logs is not None:
            logs["train_seconds"] = (self._train_end or end) - self._start
            logs["seconds"] = end - self._start


class InterruptBetweenBatches(keras.callbacks.Callback):
    """Ctrl-C stops the run at the next batch boundary, never while a backup is being written
    (a half-written backup could not be resumed). A second Ctrl-C stops at once."""

    def __init__(self) -> None:
        super().__init__()
        self.requested = False

    def request(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.requested:
            raise KeyboardInterrupt

    on_test_batch_end = on_train_batch_end

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():  # Signals reach the main thread only.
            yield
            return
        previous = signal.signal(signal.SIGINT, self.request)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


class Lookahead(keras.callbacks.Callback):
    """Every `every` steps, move a running average of the weights towards the weights, then put
    the weights back at the average (airbench's lookahead, from hlb-cifar10).

    The average's weight on its past grows as (step / total)^3 up to 0.95^5, so early
    training is untouched and the last epochs are smoothed, like an EMA whose result is
    also where the optimizer continues from. BatchNorm statistics are averaged too. A
    resumed run starts a fresh average from the restored weights.
    """

    def __init__(self, every: int, total_steps: int, final_decay: float = 0.95**5) -> None:
        super().__init__()
        self.every = every
        self.total_steps = total_steps
        self.final_decay = final_decay

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._variables = [v for v in self.model.variables if "float" in str(v.dtype)]
        self._average = [tf.identity(v.value) for v in self._variables]

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.every == 0:
            self._update(self.final_decay * min(step / self.total_steps, 1.0) ** 3)

    def on_train_end(self, logs: dict | None = None) -> None:
        if int(self.model.optimizer.iterations.numpy()) >= self.total_steps:
            self._update(1.0)  # Finish on the average itself.

    def _update(self, decay: float) -> None:
        for index, variable in enumerate(self._variables):
            average = self._average[index] + (1.0 - decay) * (variable.value - self._average[index])
            self._average[index] = average
            variable.assign(average)
