"""Micro-batching: concurrent requests share one forward pass, as in TF Serving, Triton and BentoML.

Each request puts its image on the version's queue and awaits a future. The inference
thread runs one pass over whatever is queued (up to the batch size) and hands each
request its row. Under load, batches grow by themselves while the previous one computes.

Who starts the next pass depends on what limits. When as many requests queued during a
pass as it served, the queue is not shrinking: the inference thread is what limits, so
it takes the next batch itself the moment it is free, with no round trip through the
event loop, which would leave it idle while the loop delivers answers and parses
requests (docs/benchmarks.md: +9% at 8 clients of the default model). Each pass is a new
job on the shared executor, so other models' passes take their turns. When the queue
shrinks, the thread stops and the event loop gathers the next batch.

How large a batch may grow depends on what limits too. Clients in two alternating groups
overlap: one group's pass computes while the event loop answers the other and reads its
next requests. In one group they take turns, and the inference thread idles through the
event loop's turn. That overlap pays while the model's own compute is a fair share of the
time. For a tiny model the event loop limits, it can save at most that small share, and
measured, two groups cost more than they save: its groups merge into one of up to twice the
batch size (`largest`, from `CostModel.compute_share`; docs/benchmarks.md: `model_1` at 64
clients +10-13%). For the others, a batch takes at most half the clients, so that even
fewer clients than one batch holds form two groups, as long as the extra pass's fixed cost
is less than the event loop's turn it hides (`CostModel.split_pays`; docs/benchmarks.md:
the default model at 8 clients +6%, its inference thread busy 99% of the time, not 67%).

Whether that batch waits for more is decided per batch (`BatchPolicy.ADAPTIVE`). The
clients about to send again are those of the batch just answered and those that queued
behind it while it computed, so a batch waits only until it holds that many, never for a
size the traffic cannot reach. Counting the ones behind matters: with the previous batch
alone as the target, eight clients split into two alternating batches of four and stay
split, each pass paying for half the batch it could have been (docs/benchmarks.md). And
it waits for each next request only as long as that request would save: the fixed cost
of a forward pass (`CostModel`, fitted on the batches served), the price of running it in
a batch of its own, weighed by the share of the time the inference thread is busy (a
tiny model whose answers are limited by the event loop saves nothing by merging). That
is the ski-rental rule: whatever the arrivals, waiting never costs more than twice the
best choice in hindsight. `max_wait_ms` stays an upper bound on the whole wait, never a
constant to tune. A lone client's target is one: it never waits. `BatchPolicy.EAGER`
never waits; `BatchPolicy.FIXED` is the former rule, kept as the reference: every batch
goes through the event loop and, after any batch of several, waits up to `max_wait_ms`
for a full one. The bench sweeps are in docs/benchmarks.md.

A pass releases Python's GIL while it computes and needs it back to hand over its answers. A
waiting thread asks the holder to let go only after Python's switch interval (5 ms), and an
event loop busy with other clients holds it all that time: at 32 clients of the default model
the cores idled 12% of the time. So a chained pass (the loop is feeding the thread) runs with a
short interval (`gil_interval_ms`); any other pass, and everything else, with Python's. The
short interval makes the other threads switch more often: measured, it slowed the passes of a
lone batch, which have the cores to themselves (docs/benchmarks.md, stop 57).

Closing drains: the model is still in memory when its version is unloaded (deleted
from the store, dropped by the serving policy, the server stopping), so every request
already handed to the batcher is answered, as TF Serving and Triton finish in-flight
requests before unloading. Only a request that reaches a batcher already stopped gets
ModelNotReady (503, "retry").
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from enum import StrEnum

import numpy as np

from app import metrics
from app.errors import ModelNotReady

Request = tuple[np.ndarray, "asyncio.Future[np.ndarray]"]

# The model's compute share from which two alternating groups of clients serve more than one group of all of
# them, between the cases measured (docs/benchmarks.md, stops 50-52): at 64 clients, model_1 (compute ~5% of the
# time) serves 5-13% more in one group of 64 than in two of 32, model_2 (~30%) 6% less.
OVERLAP_PAYS = 0.2
# Passes over which the batcher counts its clients: long enough to see both groups of alternating clients, short
# enough to follow the load within a few passes.
CLIENTS_OVER = 8


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

    `compute_share` is the share of the time the model's own compute would take at the current rate
    of images with the cores to itself: the fastest pass seen, per image, times images per second.
    Unlike `busy` it does not grow when passes slow down sharing the cores with the event loop.

    `loop_per_image` is the event loop's CPU time between two passes' answers, per image answered
    (same forgetting): answering, reading and parsing a request, what a client costs the event loop.
    It is the loop's CPU, whatever it spent it on: beside other busy models it counts their requests too.
    """

    def __init__(self, forgetting: float = 0.98) -> None:
        self._forgetting = forgetting
        self._sums = np.zeros(5)  # Weight, sum x, sum y, sum x^2, sum xy.
        self.overhead: float | None = None
        self.busy = 1.0
        self._fastest_per_image: float | None = None  # Seconds: the passes nothing else slowed.
        self._rate: float | None = None  # Images per second (same forgetting).
        self.loop_per_image: float | None = None  # Seconds of the event loop's CPU.

    @property
    def compute_share(self) -> float:
        if self._fastest_per_image is None or self._rate is None:
            return 1.0  # Unmeasured: as if the model limits, which changes nothing.
        return self._rate * self._fastest_per_image

    def split_pays(self, clients: int) -> bool:
        """Whether `clients` serve more in two alternating groups than in one. In one group the inference
        thread idles while the event loop answers and reads them all (`loop_per_image` each); two groups
        hide that turn behind the other group's pass, at the price of one more pass's fixed cost."""
        if self.overhead is None or self.loop_per_image is None:
            return False  # Unmeasured: one group, as before anything was known.
        return self.overhead < self.loop_per_image * clients

    def observe(self, size: int, seconds: float, period: float | None = None, loop: float | None = None) -> None:
        """A pass of `size` images took `seconds`, starting `period` seconds after the one before it; the
        event loop used `loop` seconds of CPU since it answered the one before."""
        if loop is not None:
            self.loop_per_image = self._average(self.loop_per_image, loop / size)
        per_image = seconds / size
        if self._fastest_per_image is None or per_image < self._fastest_per_image:
            self._fastest_per_image = per_image
        if period is not None and period > 0:
            self.busy = self._forgetting * self.busy + (1 - self._forgetting) * min(1.0, seconds / period)
            self._rate = self._average(self._rate, size / period)
        self._sums = self._forgetting * self._sums + np.array([1.0, size, seconds, size * size, size * seconds])
        weight, x, y, xx, xy = self._sums
        spread = weight * xx - x * x
        if spread > 1e-6 * weight * xx:  # At least two sizes, not drowned in rounding.
            slope = (weight * xy - x * y) / spread
            self.overhead = max(0.0, (y - slope * x) / weight)

    def _average(self, average: float | None, value: float) -> float:
        return value if average is None else self._forgetting * average + (1 - self._forgetting) * value


class MicroBatcher:
    def __init__(
        self,
        predict: Callable[[np.ndarray], np.ndarray],
        executor: Executor,
        max_batch_size: int,
        max_wait_ms: float,
        policy: BatchPolicy = BatchPolicy.ADAPTIVE,
        gil_interval_ms: float | None = None,
    ) -> None:
        self._predict = predict
        self._gil_interval = None if gil_interval_ms is None else gil_interval_ms / 1000.0
        self._executor = executor
        self._max_batch_size = max_batch_size
        self._max_wait = max_wait_ms / 1000.0
        self._policy = policy
        # Shared with the inference thread, which takes its batches from it: deque's append and popleft are atomic.
        self._pending: deque[Request] = deque()
        self._arrived = asyncio.Event()  # A request was queued, or close() began: a gathering batch looks again.
        self._serving = False  # A batch is being gathered or computed; only the event loop's thread touches it.
        self._drained = asyncio.Event()  # Nothing queued, nothing computing: what close() waits for.
        self._drained.set()
        self._gathering: asyncio.Task[None] | None = None  # Held: the event loop keeps only weak references.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous = 1  # Requests in the last batch: clients about to come back...
        self._behind = 0  # ...with those that queued while it computed.
        # The clients: each pass's peak of requests held at once, queued or computing (a closed-loop client has
        # at most one here), over the last CLIENTS_OVER passes; `_computing` is set by the inference thread.
        self._peaks: deque[int] = deque(maxlen=CLIENTS_OVER)
        self._peak = 0
        self._computing = 0
        self._clients = 1
        self._loop_clock: float | None = None  # The event loop's CPU clock when it last answered a pass.
        self._last_start: float | None = None  # When the last pass started: the clock of the busy share.
        self.costs = CostModel()
        self._closing = False

    async def predict(self, image: np.ndarray) -> np.ndarray:
        """Probabilities for one uint8 (32, 32, 3) image."""
        if self._closing and not self._serving:
            raise _unloaded()
        self._loop = asyncio.get_running_loop()  # Where the inference thread posts the answers.
        future: asyncio.Future[np.ndarray] = self._loop.create_future()
        self._pending.append((image, future))
        self._peak = max(self._peak, len(self._pending) + self._computing)
        self._arrived.set()
        if not self._serving:
            self._start()
        return await future

    def _start(self) -> None:
        """The inference thread is free of this model's work: gather a batch, as the policy says, and send it."""
        self._serving = True
        self._drained.clear()
        self._gathering = asyncio.ensure_future(self._gather_and_send())

    async def _gather_and_send(self) -> None:
        """The event loop's side of a batch: wait for companions as the policy says, then hand it to the thread."""
        try:
            await self._gather()
        except asyncio.CancelledError:  # The event loop is shutting down mid-gathering.
            self._give_up()
            raise
        try:
            self._executor.submit(self._serve_pending)
        except RuntimeError:  # The executor is shut down: the server is stopping.
            self._give_up()

    def _give_up(self) -> None:
        """No pass will run: what is queued gets ModelNotReady (retry) rather than waiting forever."""
        self._fail_pending(_unloaded())
        self._idle()

    async def _gather(self) -> None:
        """Wait for companions only while below the policy's target, each next request for at most
        `patience()`, all of them for at most max_wait, so a lone client never pays the wait, nor does a
        closing batcher."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait
        target, patience = min(self.target(), self.largest()), self.patience()
        while len(self._pending) < target and not self._closing:
            remaining = min(deadline - loop.time(), patience)
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
            except TimeoutError:
                return

    def _serve_pending(self, chained: bool = False) -> None:
        """In the inference thread: one forward pass over what is queued, its answers handed to the event
        loop; then, if more queued meanwhile and the policy chains, the next pass straight away, without
        a round trip through the event loop (a new job, so other models' passes take their turn). A chained
        pass runs with the short switch interval: the event loop is busy feeding it and holds the GIL."""
        batch: list[Request] = []
        largest = self.largest()
        while self._pending and len(batch) < largest:
            request = self._pending.popleft()
            if not request[1].cancelled():  # Its caller left.
                batch.append(request)
        self._computing = len(batch)
        if batch:
            started = time.perf_counter()
            try:
                with switch_interval(self._gil_interval if chained else None):
                    outcome: np.ndarray | Exception = self._predict(np.stack([image for image, _ in batch]))
            except Exception as error:  # Handed to every request of the batch; serving goes on.
                outcome = error
            self._computing = 0
            if not self._post(self._deliver, batch, outcome, started, time.perf_counter() - started):
                return
        if self._pending and self._chains(len(batch)):
            try:
                self._executor.submit(self._serve_pending, True)
                return
            except RuntimeError:  # The executor is shut down: the event loop fails what is left.
                pass
        self._post(self._idle)

    def _post(self, callback: Callable[..., object], *args: object) -> bool:
        """Run `callback(*args)` in the event loop's thread; False if the loop is gone (shut down)."""
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            return False
        return True

    def _deliver(self, batch: list[Request], outcome: np.ndarray | Exception, started: float, seconds: float) -> None:
        """In the event loop: each request gets its row (or the pass's error); the policy's statistics."""
        period = None if self._last_start is None else started - self._last_start
        self._last_start = started
        self._previous, self._behind = len(batch), len(self._pending)
        self._peaks.append(self._peak)
        self._peak, self._clients = 0, max(self._peaks)
        clock = time.thread_time()  # This thread's CPU: the event loop's.
        loop = None if self._loop_clock is None else clock - self._loop_clock
        self._loop_clock = clock
        metrics.BATCH_SIZE.observe(len(batch))
        metrics.FORWARD_PASS_SECONDS.observe(seconds)
        if isinstance(outcome, Exception):
            _fail(batch, outcome)
            return
        self.costs.observe(len(batch), seconds, period, loop)
        for row, (_, future) in zip(outcome, batch, strict=True):
            if not future.done():  # The client may have gone away.
                future.set_result(row)

    def _idle(self) -> None:
        """In the event loop: the inference thread has stopped serving this model; requests that queued
        since it last looked start a new batch (a closing batcher drains them too)."""
        self._serving = False
        if self._pending:
            self._start()
        else:
            self._drained.set()

    def _chains(self, served: int) -> bool:
        """Whether the inference thread takes the next batch itself, the moment it is free: while the
        queue does not shrink (as many queued during the pass as it served), the thread is what limits."""
        return self._policy is not BatchPolicy.FIXED and len(self._pending) >= served

    def target(self) -> int:
        """How many requests the batch being gathered waits for (it takes more if they are queued)."""
        if self._policy is BatchPolicy.FIXED:
            return self._max_batch_size if self._previous > 1 else 1
        if self._policy is BatchPolicy.EAGER:
            return 1
        return min(self._previous + self._behind, self.largest())

    def largest(self) -> int:
        """The most requests one pass takes. Clients in two alternating groups overlap, one computing while
        the event loop serves the other; that pays when the model's compute is a fair share of the time
        (OVERLAP_PAYS). So a batch takes half the clients, rounded up, when that split pays by the measured
        costs (`CostModel.split_pays`), and at most `max_batch_size`. When the model's compute is a small
        share (a tiny model: the event loop limits), the two groups serve more merged into one of up to
        twice `max_batch_size`. The fixed policy and a batch size of one (batching off) keep the setting."""
        if self._policy is BatchPolicy.FIXED or self._max_batch_size == 1:
            return self._max_batch_size
        if self.costs.compute_share < OVERLAP_PAYS:
            return 2 * self._max_batch_size
        clients = self.clients()
        if self.costs.split_pays(clients):
            return min(self._max_batch_size, (clients + 1) // 2)  # Half, rounded up.
        return self._max_batch_size

    def clients(self) -> int:
        """How many clients the batcher serves: the most requests it held at once, queued or computing, over
        the last CLIENTS_OVER passes and since (a burst counts at once, and until it has gone by)."""
        return max(self._clients, self._peak)

    def patience(self) -> float:
        """Seconds to wait for the next request while below target: what it saves (ADAPTIVE), else max_wait.

        Merging saves a pass's fixed cost only when the inference thread's time is what limits the answers;
        when the event loop is (a tiny model), the thread would idle anyway and waiting only adds latency,
        so the saving is weighed by the share of the time the thread was busy."""
        overhead = self.costs.overhead
        if self._policy is BatchPolicy.ADAPTIVE and overhead is not None:
            return min(overhead * self.costs.busy, self._max_wait)
        return self._max_wait

    async def close(self) -> None:
        """Answer everything already queued or computing, then stop; later requests get ModelNotReady."""
        self._closing = True
        self._arrived.set()  # A batch waiting for companions goes now.
        try:
            await asyncio.shield(self._drained.wait())
        finally:  # Whatever stopped the draining, nobody is left waiting forever.
            if not self._serving:
                self._fail_pending(_unloaded())

    def _fail_pending(self, error: BaseException) -> None:
        leftover = []
        while self._pending:
            leftover.append(self._pending.popleft())
        _fail(leftover, error)


@contextmanager
def switch_interval(seconds: float | None) -> Iterator[None]:
    """Python's switch interval set to `seconds` (None: left as it is) for the block, then put back. One
    inference thread runs the passes, so no other pass changes it meanwhile."""
    if seconds is None:
        yield
        return
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _unloaded() -> ModelNotReady:
    return ModelNotReady("the model version was unloaded as this request reached it; retry")


def _fail(batch: list[Request], error: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
