"""Micro-batching: concurrent requests share one forward pass, as in TF Serving, Triton and BentoML.

Each request puts its image on a queue and awaits a future. One task per model
takes the first waiting image, gathers whatever else is already queued (waiting at
most `max_wait_ms` for more, up to `max_batch_size`), runs the whole batch in the
inference thread, and hands each request its row. Under load, batches grow by
themselves while the previous one is computing; at concurrency 1 nothing waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import Executor

import numpy as np

from app import metrics
from app.errors import ModelNotReady


class MicroBatcher:
    def __init__(
        self,
        predict: Callable[[np.ndarray], np.ndarray],
        executor: Executor,
        max_batch_size: int,
        max_wait_ms: float,
    ) -> None:
        self._predict = predict
        self._executor = executor
        self._max_batch_size = max_batch_size
        self._max_wait = max_wait_ms / 1000.0
        self._queue: asyncio.Queue[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._concurrent = False  # Did the last batch hold more than one request?

    async def predict(self, image: np.ndarray) -> np.ndarray:
        """Probabilities for one uint8 (32, 32, 3) image."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((image, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            await self._fill(batch)
            self._concurrent = len(batch) > 1
            images = np.stack([image for image, _ in batch])
            metrics.BATCH_SIZE.observe(len(batch))
            try:
                probabilities = await asyncio.get_running_loop().run_in_executor(self._executor, self._predict, images)
            except asyncio.CancelledError:  # Closed mid-batch: these requests must still get an answer.
                _fail(batch, ModelNotReady("the model version was unloaded while this request waited; retry"))
                raise
            except Exception as error:  # Hand the failure to every waiting request; keep serving.
                _fail(batch, error)
                continue
            for row, (_, future) in zip(probabilities, batch, strict=True):
                if not future.done():  # The client may have gone away.
                    future.set_result(row)

    async def _fill(self, batch: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]]) -> None:
        """Take what is queued; wait up to max_wait for more only while requests arrive concurrently
        (the last batch held several), so a lone client never pays the wait."""
        deadline = asyncio.get_running_loop().time() + self._max_wait
        while len(batch) < self._max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            if not self._concurrent and len(batch) == 1:
                return
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                return

    async def close(self) -> None:
        """Stop; every request still queued or in the running batch gets an error, none waits forever."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        queued = []
        while not self._queue.empty():
            queued.append(self._queue.get_nowait())
        _fail(queued, ModelNotReady("the model version was unloaded while this request waited; retry"))


def _fail(batch: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]], error: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
