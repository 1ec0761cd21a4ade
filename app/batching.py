"""Micro-batching: concurrent requests share one forward pass, as in TF Serving, Triton and BentoML.

Each request puts its image on a queue and awaits a future. One task per model
takes the first waiting image, gathers whatever else is already queued, runs the
whole batch in the inference thread, and hands each request its row. Under load,
batches grow by themselves while the previous one is computing.

Whether to wait for more is decided per batch (`BatchPolicy.ADAPTIVE`). The clients
about to send again are those of the batch just answered and those that queued behind
it while it computed, so a batch waits only until it holds that many, never for a size
the traffic cannot reach. Counting the ones behind matters: with the previous batch
alone as the target, eight clients split into two alternating batches of four and stay
split, each pass paying for half the batch it could have been (docs/benchmarks.md). And
it waits for each next request only as long as that request would save:
the fixed cost of a forward pass (`CostModel`, fitted on the batches served), the
price of running it in a batch of its own, weighed by the share of the time the
inference thread is busy (a tiny model whose answers are limited by the event loop
saves nothing by merging). That is the ski-rental rule: whatever the arrivals, waiting
never costs more than twice the best choice in hindsight.
`max_wait_ms` stays an upper bound on the whole wait, never a constant to tune. A
lone client's target is one: it never waits. `BatchPolicy.EAGER` never waits (a batch
is what queued while the previous one computed); `BatchPolicy.FIXED` is the former
rule (wait up to `max_wait_ms` for a full batch whenever the last batch held several).
The bench sweep of all three is in docs/benchmarks.md.

Closing drains: the model is still in memory when its version is unloaded (deleted
from the store, dropped by the serving policy, the server stopping), so every request
already handed to the batcher is answered, as TF Serving and Triton finish in-flight
requests before unloading. Only a request that reaches a batcher already stopped gets
ModelNotReady (503, "retry").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from enum import StrEnum

import numpy as np

from app import metrics
from app.errors import ModelNotReady

Request = tuple[np.ndarray, "asyncio.Future[np.ndarray]"]


class BatchPolicy(StrEnum):
    ADAPTIVE = "adaptive"  # Wait only for the clients of the last batch and those queued behind it.
    EAGER = "eager"  # Never wait: a batch is what queued while the previous one computed.
    FIXED = "fixed"  # Wait for a full batch, up to max_wait, after any batch of several (the former rule).


class CostModel:
    """Seconds per forward pass as `overhead + per_image * size`, a least-squares line through the
    batches served, older batches weighing less (`forgetting` per batch) so it follows the load.

    `overhead` is what merging one more request into a batch saves (its own pass would pay it again);
    it keeps its last value while the batches seen so far are all of one size (the line is then
    undetermined), and is `None` until the first fit. `busy` is the share of the time the passes took
    (same forgetting): the saving counts only while the inference thread's time is what is short.
    """

    def __init__(self, forgetting: float = 0.98) -> None:
        self._forgetting = forgetting
        self._sums = np.zeros(5)  # Weight, sum x, sum y, sum x^2, sum xy.
        self.overhead: float | None = None
        self.busy = 1.0

    def observe(self, size: int, seconds: float, period: float | None = None) -> None:
        """A pass of `size` images took `seconds`, starting `period` seconds after the one before it."""
        if period is not None and period > 0:
            self.busy = self._forgetting * self.busy + (1 - self._forgetting) * min(1.0, seconds / period)
        self._sums = self._forgetting * self._sums + np.array([1.0, size, seconds, size * size, size * seconds])
        weight, x, y, xx, xy = self._sums
        spread = weight * xx - x * x
        if spread > 1e-6 * weight * xx:  # At least two sizes, not drowned in rounding.
            slope = (weight * xy - x * y) / spread
            self.overhead = max(0.0, (y - slope * x) / weight)


class MicroBatcher:
    def __init__(
        self,
        predict: Callable[[np.ndarray], np.ndarray],
        executor: Executor,
        max_batch_size: int,
        max_wait_ms: float,
        policy: BatchPolicy = BatchPolicy.ADAPTIVE,
    ) -> None:
        self._predict = predict
        self._executor = executor
        self._max_batch_size = max_batch_size
        self._max_wait = max_wait_ms / 1000.0
        self._policy = policy
        self._queue: asyncio.Queue[Request | None] = asyncio.Queue()  # None: close() waking an idle task.
        self._task: asyncio.Task[None] | None = None
        self._previous = 1  # Requests in the last batch: clients about to come back...
        self._behind = 0  # ...with those that queued while it computed.
        self._last_start: float | None = None  # When the last pass started: the clock of the busy share.
        self.costs = CostModel()
        self._closing = False

    async def predict(self, image: np.ndarray) -> np.ndarray:
        """Probabilities for one uint8 (32, 32, 3) image."""
        if self._closing and (self._task is None or self._task.done()):
            raise _unloaded()
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((image, future))
        return await future

    async def _run(self) -> None:
        """Serve batches until closed with nothing left queued."""
        while not (self._closing and self._queue.empty()):
            first = await self._queue.get()
            if first is None:
                continue
            batch = [first]
            try:  # From here the batch is off the queue: whatever happens, each request gets an answer.
                await self._fill(batch)
                batch[:] = [request for request in batch if not request[1].cancelled()]  # Their callers left.
                if not batch:
                    continue
                self._previous = len(batch)
                images = np.stack([image for image, _ in batch])
                metrics.BATCH_SIZE.observe(len(batch))
                started = time.perf_counter()
                period = None if self._last_start is None else started - self._last_start
                self._last_start = started
                probabilities = await asyncio.get_running_loop().run_in_executor(self._executor, self._predict, images)
                self.costs.observe(len(batch), time.perf_counter() - started, period)
                self._behind = self._queue.qsize()
            except asyncio.CancelledError:  # Stopped from outside (event loop shutdown) mid-batch.
                _fail(batch, _unloaded())
                raise
            except Exception as error:  # Hand the failure to every waiting request; keep serving.
                _fail(batch, error)
                continue
            for row, (_, future) in zip(probabilities, batch, strict=True):
                if not future.done():  # The client may have gone away.
                    future.set_result(row)

    def target(self) -> int:
        """How many requests the batch being gathered waits for (it takes more if they are queued)."""
        if self._policy is BatchPolicy.FIXED:
            return self._max_batch_size if self._previous > 1 else 1
        if self._policy is BatchPolicy.EAGER:
            return 1
        return min(self._previous + self._behind, self._max_batch_size)

    def patience(self) -> float:
        """Seconds to wait for the next request while below target: what it saves (ADAPTIVE), else max_wait.

        Merging saves a pass's fixed cost only when the inference thread's time is what limits the answers;
        when the event loop is (a tiny model), the thread would idle anyway and waiting only adds latency,
        so the saving is weighed by the share of the time the thread was busy."""
        overhead = self.costs.overhead
        if self._policy is BatchPolicy.ADAPTIVE and overhead is not None:
            return min(overhead * self.costs.busy, self._max_wait)
        return self._max_wait

    async def _fill(self, batch: list[Request]) -> None:
        """Take what is queued; wait for more only while the batch is below its target, each next
        request for at most `patience()`, all of them for at most max_wait, so a lone client never
        pays the wait, nor does a closing batcher."""
        deadline = asyncio.get_running_loop().time() + self._max_wait
        target, patience = self.target(), self.patience()
        while len(batch) < self._max_batch_size:
            if not self._queue.empty():
                request = self._queue.get_nowait()
                if request is not None:
                    batch.append(request)
                continue
            if self._closing or len(batch) >= target:
                return
            remaining = min(deadline - asyncio.get_running_loop().time(), patience)
            if remaining <= 0:
                return
            try:  # asyncio.timeout, not wait_for: on 3.11 wait_for can lose an item or swallow a cancellation.
                async with asyncio.timeout(remaining):
                    request = await self._queue.get()
            except TimeoutError:
                return
            if request is not None:
                batch.append(request)

    async def close(self) -> None:
        """Answer everything already queued or computing, then stop; later requests get ModelNotReady."""
        self._closing = True
        if self._task is None:
            return
        self._queue.put_nowait(None)  # Wakes the task if it is idle; it then sees it is closing.
        try:
            await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if not self._task.cancelled():  # close() itself was cancelled, not the task.
                raise
        finally:  # Whatever stopped the task, nobody is left waiting forever.
            leftover = []
            while not self._queue.empty():
                leftover.append(self._queue.get_nowait())
            _fail([request for request in leftover if request is not None], _unloaded())


def _unloaded() -> ModelNotReady:
    return ModelNotReady("the model version was unloaded as this request reached it; retry")


def _fail(batch: list[Request], error: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
