"""The micro-batcher coalesces concurrent requests and keeps each answer with its request."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from prometheus_client import REGISTRY

from app.batching import CLIENTS_OVER, BatchPolicy, CostModel, MicroBatcher


def _identity_rows(images: np.ndarray) -> np.ndarray:
    """A stand-in forward pass whose output row reveals which image it came from."""
    _identity_rows.sizes.append(len(images))
    return images[:, 0, 0, :1].astype(np.float32)


_identity_rows.sizes = []  # type: ignore[attr-defined]


def test_concurrent_requests_share_forward_passes_and_keep_their_rows() -> None:
    async def scenario() -> list[float]:
        batcher = MicroBatcher(_identity_rows, ThreadPoolExecutor(1), max_batch_size=8, max_wait_ms=20)
        images = [np.full((32, 32, 3), value, np.uint8) for value in range(20)]
        results = await asyncio.gather(*(batcher.predict(image) for image in images))
        await batcher.close()
        return [float(row[0]) for row in results]

    _identity_rows.sizes.clear()
    assert asyncio.run(scenario()) == [float(v) for v in range(20)]
    assert max(_identity_rows.sizes) == 8  # Never above the configured maximum...
    assert len(_identity_rows.sizes) <= 4  # ...and far fewer passes than requests.


def test_a_failing_forward_pass_fails_its_requests_only() -> None:
    calls = []

    def flaky(images: np.ndarray) -> np.ndarray:
        calls.append(len(images))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return np.zeros((len(images), 10), np.float32)

    async def scenario() -> tuple[str, int]:
        batcher = MicroBatcher(flaky, ThreadPoolExecutor(1), max_batch_size=4, max_wait_ms=0)
        try:
            await batcher.predict(np.zeros((32, 32, 3), np.uint8))
        except RuntimeError as error:
            first = str(error)
        second = await batcher.predict(np.zeros((32, 32, 3), np.uint8))
        await batcher.close()
        return first, len(second)

    assert asyncio.run(scenario()) == ("boom", 10)


def test_each_forward_pass_reports_its_compute_time_without_the_queueing() -> None:
    """`cifar_forward_pass_seconds`: its rate of sum is the share of the time the inference thread computes."""

    def slow(images: np.ndarray) -> np.ndarray:
        time.sleep(0.05)
        return _identity_rows(images)

    async def scenario() -> float:
        batcher = MicroBatcher(slow, ThreadPoolExecutor(1), max_batch_size=2, max_wait_ms=0)
        start = time.perf_counter()
        await asyncio.gather(*(batcher.predict(np.zeros((32, 32, 3), np.uint8)) for _ in range(6)))
        await batcher.close()
        return time.perf_counter() - start

    def sample(suffix: str) -> float:
        return REGISTRY.get_sample_value(f"cifar_forward_pass_seconds_{suffix}") or 0.0

    count, total = sample("count"), sample("sum")
    _identity_rows.sizes.clear()
    wall = asyncio.run(scenario())
    passes = len(_identity_rows.sizes)
    assert sample("count") - count == passes >= 3  # Six requests, at most two per pass.
    # Each pass's own 50 ms, and not the time its requests waited behind the passes before it.
    assert 0.05 * passes <= sample("sum") - total < min(wall, 0.05 * passes + 0.1)


def test_a_lone_request_is_not_held_back_waiting_for_companions() -> None:
    async def scenario() -> int:
        batcher = MicroBatcher(_identity_rows, ThreadPoolExecutor(1), max_batch_size=8, max_wait_ms=60_000)
        row = await asyncio.wait_for(batcher.predict(np.zeros((32, 32, 3), np.uint8)), timeout=5)
        await batcher.close()
        return len(row)

    assert asyncio.run(scenario()) == 1


def test_under_concurrent_load_a_batch_waits_for_late_arrivals() -> None:
    async def scenario() -> None:
        batcher = MicroBatcher(
            _identity_rows, ThreadPoolExecutor(1), max_batch_size=8, max_wait_ms=2_000, policy=BatchPolicy.FIXED
        )
        image = np.zeros((32, 32, 3), np.uint8)
        await asyncio.gather(*(batcher.predict(image) for _ in range(3)))  # Concurrent traffic...
        early = asyncio.create_task(batcher.predict(image))
        await asyncio.sleep(0.2)
        late = asyncio.create_task(batcher.predict(image))  # ...so this one joins the early one's batch.
        await asyncio.wait_for(asyncio.gather(early, late), timeout=5)
        await batcher.close()

    _identity_rows.sizes.clear()
    asyncio.run(scenario())
    assert _identity_rows.sizes == [3, 2]


def test_closing_drains_every_queued_and_running_request_before_it_returns() -> None:
    """A version unloaded under load is still in memory: what was handed to it gets a real answer."""
    import threading

    release = threading.Event()

    def slow(images: np.ndarray) -> np.ndarray:
        release.wait(5)
        return images[:, 0, 0, :1].astype(np.float32)

    async def scenario() -> tuple[list[float], bool]:
        batcher = MicroBatcher(slow, ThreadPoolExecutor(1), max_batch_size=4, max_wait_ms=0)
        images = [np.full((32, 32, 3), value, np.uint8) for value in range(10)]
        requests = [asyncio.ensure_future(batcher.predict(image)) for image in images]
        await asyncio.sleep(0.05)  # The first batch is running, the rest are queued.
        threading.Timer(0.2, release.set).start()
        await asyncio.wait_for(batcher.close(), timeout=5)
        answered_by_close = all(request.done() for request in requests)
        return [float(row[0]) for row in await asyncio.gather(*requests)], answered_by_close

    rows, answered_by_close = asyncio.run(scenario())
    assert rows == [float(value) for value in range(10)]
    assert answered_by_close


def test_closing_while_a_batch_gathers_late_arrivals_answers_it_at_once() -> None:
    """The batch being filled is off the queue: closing must neither drop it nor let it wait for companions."""

    async def scenario() -> list[np.ndarray]:
        batcher = MicroBatcher(
            _identity_rows, ThreadPoolExecutor(1), max_batch_size=8, max_wait_ms=60_000, policy=BatchPolicy.FIXED
        )
        image = np.zeros((32, 32, 3), np.uint8)
        await asyncio.gather(*(batcher.predict(image) for _ in range(8)))  # A full batch: traffic is concurrent...
        gathering = [asyncio.ensure_future(batcher.predict(image)) for _ in range(2)]
        await asyncio.sleep(0.1)  # ...so these two are off the queue, waiting a minute for companions.
        await asyncio.wait_for(batcher.close(), timeout=5)
        return list(await asyncio.wait_for(asyncio.gather(*gathering), timeout=5))

    assert [row.shape for row in asyncio.run(scenario())] == [(1,), (1,)]


def test_a_closed_batcher_refuses_new_requests_instead_of_serving_an_unloaded_model() -> None:
    from app.errors import ModelNotReady

    async def scenario() -> None:
        batcher = MicroBatcher(_identity_rows, ThreadPoolExecutor(1), max_batch_size=8, max_wait_ms=0)
        await batcher.predict(np.zeros((32, 32, 3), np.uint8))
        await asyncio.wait_for(batcher.close(), timeout=5)  # Idle when closed: it must still stop.
        with pytest.raises(ModelNotReady, match="unloaded"):
            await asyncio.wait_for(batcher.predict(np.zeros((32, 32, 3), np.uint8)), timeout=5)

    asyncio.run(scenario())


def test_a_batch_waits_only_for_as_many_requests_as_the_previous_one_held() -> None:
    """Eight clients never make a batch of 32: waiting for one would cost every batch the whole wait."""

    async def scenario() -> float:
        batcher = MicroBatcher(
            _identity_rows, ThreadPoolExecutor(1), max_batch_size=32, max_wait_ms=60_000, policy=BatchPolicy.ADAPTIVE
        )
        image = np.zeros((32, 32, 3), np.uint8)
        await asyncio.gather(*(batcher.predict(image) for _ in range(8)))
        assert batcher.target() == 8
        start = asyncio.get_running_loop().time()
        await asyncio.wait_for(asyncio.gather(*(batcher.predict(image) for _ in range(8))), timeout=5)
        await batcher.close()
        return asyncio.get_running_loop().time() - start

    _identity_rows.sizes.clear()
    assert asyncio.run(scenario()) < 1.0
    assert _identity_rows.sizes == [8, 8]


def test_clients_queued_behind_a_batch_the_thread_keeps_up_with_regroup_with_it() -> None:
    """Two clients arrive while four others' batch computes: fewer than it served, so the thread is not what
    limits and hands back to the event loop, whose next batch counts both groups as about to send and waits
    for the first four to come back: from then on, one pass for all six."""

    async def client(batcher: MicroBatcher, requests: int) -> None:
        for _ in range(requests):
            await batcher.predict(np.zeros((32, 32, 3), np.uint8))

    async def scenario() -> None:
        batcher = _adaptive_batcher(overhead=0.1)
        early = [asyncio.create_task(client(batcher, 3)) for _ in range(4)]
        await asyncio.sleep(0.03)  # The early four's first batch is computing.
        late = [asyncio.create_task(client(batcher, 3)) for _ in range(2)]
        await asyncio.wait_for(asyncio.gather(*early, *late), timeout=10)
        await batcher.close()

    _identity_rows.sizes.clear()
    asyncio.run(scenario())
    assert _identity_rows.sizes == [4, 6, 6, 2]  # Waiting only for the last batch's four: 4, 2, 4, 2, 4, 2.


def _gap_between_passes_while_the_loop_is_stuck(policy: BatchPolicy) -> float:
    """Four requests queue during a pass of four, then the event loop is stuck for 0.3 s (say, decoding a
    large upload) past that pass's end: seconds from the first pass's end to the second's start."""
    passes: list[tuple[float, float]] = []

    def timed(images: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        time.sleep(0.1)
        passes.append((started, time.perf_counter()))
        return _identity_rows(images)

    async def scenario() -> None:
        batcher = MicroBatcher(timed, ThreadPoolExecutor(1), max_batch_size=32, max_wait_ms=0, policy=policy)
        image = np.zeros((32, 32, 3), np.uint8)
        first = [asyncio.ensure_future(batcher.predict(image)) for _ in range(4)]
        await asyncio.sleep(0.03)  # The first pass is computing...
        second = [asyncio.ensure_future(batcher.predict(image)) for _ in range(4)]
        await asyncio.sleep(0)  # ...the second four are queued...
        time.sleep(0.3)  # ...and the event loop is stuck.
        await asyncio.wait_for(asyncio.gather(*first, *second), timeout=5)
        await batcher.close()

    _identity_rows.sizes.clear()
    asyncio.run(scenario())
    assert _identity_rows.sizes == [4, 4]
    (_, first_end), (second_start, _) = passes
    return second_start - first_end


@pytest.mark.parametrize("policy", [BatchPolicy.ADAPTIVE, BatchPolicy.EAGER])
def test_while_the_queue_does_not_shrink_the_thread_takes_the_next_batch_itself(policy: BatchPolicy) -> None:
    """As many queued during the pass as it served: the inference thread is what limits, so it starts the
    next pass the moment it is free, with no round trip through the event loop."""
    assert _gap_between_passes_while_the_loop_is_stuck(policy) < 0.1  # Not after the loop's 0.3 s.


def test_the_fixed_policy_leaves_every_batch_to_the_event_loop() -> None:
    """The former rule, kept as the reference: the next pass waits for the event loop to send it."""
    assert _gap_between_passes_while_the_loop_is_stuck(BatchPolicy.FIXED) > 0.15


def test_when_clients_leave_the_wait_is_paid_once_then_the_target_follows() -> None:
    async def scenario() -> float:
        batcher = MicroBatcher(
            _identity_rows, ThreadPoolExecutor(1), max_batch_size=32, max_wait_ms=300, policy=BatchPolicy.ADAPTIVE
        )
        image = np.zeros((32, 32, 3), np.uint8)
        await asyncio.gather(*(batcher.predict(image) for _ in range(4)))
        start = asyncio.get_running_loop().time()
        for _ in range(5):  # One client stays: it waits for its former companions once, then never again.
            await batcher.predict(image)
        await batcher.close()
        return asyncio.get_running_loop().time() - start

    _identity_rows.sizes.clear()
    elapsed = asyncio.run(scenario())
    assert _identity_rows.sizes == [4, 1, 1, 1, 1, 1]
    assert 0.3 <= elapsed < 0.6


def test_the_fixed_policy_waits_for_a_full_batch_after_any_batch_of_several() -> None:
    async def scenario() -> tuple[int, int]:
        batcher = MicroBatcher(
            _identity_rows, ThreadPoolExecutor(1), max_batch_size=32, max_wait_ms=0, policy=BatchPolicy.FIXED
        )
        image = np.zeros((32, 32, 3), np.uint8)
        before = batcher.target()
        await asyncio.gather(*(batcher.predict(image) for _ in range(3)))
        after = batcher.target()
        await batcher.close()
        return before, after

    assert asyncio.run(scenario()) == (1, 32)


def test_the_eager_policy_never_waits_even_after_a_full_batch() -> None:
    async def scenario() -> float:
        batcher = MicroBatcher(
            _identity_rows, ThreadPoolExecutor(1), max_batch_size=8, max_wait_ms=60_000, policy=BatchPolicy.EAGER
        )
        image = np.zeros((32, 32, 3), np.uint8)
        await asyncio.gather(*(batcher.predict(image) for _ in range(8)))
        start = asyncio.get_running_loop().time()
        await asyncio.wait_for(batcher.predict(image), timeout=5)
        await batcher.close()
        return asyncio.get_running_loop().time() - start

    assert asyncio.run(scenario()) < 1.0


def test_the_cost_model_recovers_a_forward_passs_fixed_cost_from_the_batches_served() -> None:
    costs = CostModel()
    for _ in range(3):
        costs.observe(4, 0.014)
    assert costs.overhead is None  # One size only: the line through the points is undetermined.
    for size in (1, 8, 2, 32):
        costs.observe(size, 0.010 + 0.001 * size)
    assert costs.overhead == pytest.approx(0.010)
    for _ in range(100):
        costs.observe(8, 0.018)  # One size again: the last fit stands.
    assert costs.overhead == pytest.approx(0.010)


def test_waiting_saves_a_passs_fixed_cost_only_as_far_as_the_inference_thread_is_busy() -> None:
    """A tiny model's thread idles between passes (the event loop limits the answers): merging saves nothing."""
    batcher = MicroBatcher(_identity_rows, ThreadPoolExecutor(1), max_batch_size=32, max_wait_ms=60_000)
    for size in (1, 8) * 200:  # Passes of 1 ms plus 0.1 ms per image, one every 20 ms.
        batcher.costs.observe(size, 0.001 + 0.0001 * size, period=0.020)
    assert batcher.costs.busy == pytest.approx(0.07, abs=0.02)
    assert batcher.patience() == pytest.approx(0.001 * batcher.costs.busy)


def _adaptive_batcher(overhead: float) -> MicroBatcher:
    """An adaptive batcher whose forward pass costs `overhead` seconds at any size, and which knows it."""

    def fixed_cost(images: np.ndarray) -> np.ndarray:
        time.sleep(overhead)
        return _identity_rows(images)

    batcher = MicroBatcher(
        fixed_cost, ThreadPoolExecutor(1), max_batch_size=32, max_wait_ms=60_000, policy=BatchPolicy.ADAPTIVE
    )
    for size in (1, 4):
        batcher.costs.observe(size, overhead)  # As if measured: a fixed cost per pass, nothing per image.
    return batcher


def test_a_missing_companion_is_waited_for_no_longer_than_its_own_pass_would_cost() -> None:
    async def scenario() -> float:
        batcher = _adaptive_batcher(overhead=0.05)
        image = np.zeros((32, 32, 3), np.uint8)
        await asyncio.gather(*(batcher.predict(image) for _ in range(4)))
        assert batcher.patience() == pytest.approx(0.05, abs=0.01)
        start = asyncio.get_running_loop().time()
        await asyncio.wait_for(batcher.predict(image), timeout=5)  # Its three companions never come back.
        await batcher.close()
        return asyncio.get_running_loop().time() - start

    assert 0.04 <= asyncio.run(scenario()) < 0.5  # Not max_wait's minute.


def test_a_companion_arriving_within_that_cost_joins_the_batch() -> None:
    async def scenario() -> None:
        batcher = _adaptive_batcher(overhead=0.3)
        image = np.zeros((32, 32, 3), np.uint8)
        await asyncio.gather(*(batcher.predict(image) for _ in range(2)))
        first = asyncio.create_task(batcher.predict(image))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(batcher.predict(image))
        await asyncio.wait_for(asyncio.gather(first, second), timeout=5)
        await batcher.close()

    _identity_rows.sizes.clear()
    asyncio.run(scenario())
    assert _identity_rows.sizes == [2, 2]


def test_compute_share_counts_the_fastest_passes_not_those_slowed_by_the_event_loop() -> None:
    costs = CostModel()
    assert costs.compute_share == 1.0  # Unmeasured: as if the model limits.
    costs.observe(8, 0.008, period=0.1)  # 1 ms per image alone, 80 images per second.
    for _ in range(50):
        costs.observe(8, 0.040, period=0.1)  # The same passes, five times slower beside a busy event loop.
    assert costs.compute_share == pytest.approx(0.08)
    assert costs.busy > 0.2  # The time the passes took, which the slowdown inflates.


def _sizes_of_eight_concurrent_requests(batcher: MicroBatcher) -> list[int]:
    async def scenario() -> None:
        await asyncio.gather(*(batcher.predict(np.zeros((32, 32, 3), np.uint8)) for _ in range(8)))
        await batcher.close()

    _identity_rows.sizes.clear()
    asyncio.run(scenario())
    return list(_identity_rows.sizes)


def test_a_model_the_event_loop_limits_takes_its_clients_in_one_batch_of_up_to_twice_the_size() -> None:
    """Two alternating groups only pay while the model's compute is a fair share of the time."""
    batcher = MicroBatcher(_identity_rows, ThreadPoolExecutor(1), max_batch_size=4, max_wait_ms=0)
    batcher.costs.observe(4, 0.001, period=0.1)  # 0.25 ms per image, 40 images per second: 1% of the time.
    assert batcher.largest() == 8
    assert _sizes_of_eight_concurrent_requests(batcher) == [8]


def test_a_model_that_computes_a_fair_share_of_the_time_keeps_batches_of_the_configured_size() -> None:
    batcher = MicroBatcher(_identity_rows, ThreadPoolExecutor(1), max_batch_size=4, max_wait_ms=0)
    batcher.costs.observe(4, 0.02, period=0.04)  # 5 ms per image, 100 images per second: half the time.
    assert batcher.largest() == 4
    assert _sizes_of_eight_concurrent_requests(batcher) == [4, 4]


def test_the_fixed_policy_and_batching_turned_off_keep_the_configured_size_whatever_the_model_costs() -> None:
    fixed = MicroBatcher(_identity_rows, ThreadPoolExecutor(1), 4, max_wait_ms=0, policy=BatchPolicy.FIXED)
    off = MicroBatcher(_identity_rows, ThreadPoolExecutor(1), max_batch_size=1, max_wait_ms=0)
    for batcher in (fixed, off):
        batcher.costs.observe(1, 0.00025, period=0.1)  # 1% of the time.
    assert (fixed.largest(), off.largest()) == (4, 1)


def test_a_pass_the_thread_chains_runs_with_the_short_switch_interval_any_other_with_pythons() -> None:
    """The second pass is chained (four queued during the first): the event loop, busy feeding the thread,
    would keep the GIL from it for Python's 5 ms after it computes. The first, sent by the loop, is not."""
    seen = []

    def recording(images: np.ndarray) -> np.ndarray:
        seen.append(sys.getswitchinterval())
        time.sleep(0.05)
        return np.zeros((len(images), 10), np.float32)

    async def scenario() -> None:
        batcher = MicroBatcher(recording, ThreadPoolExecutor(1), max_batch_size=4, max_wait_ms=0, gil_interval_ms=0.25)
        image = np.zeros((32, 32, 3), np.uint8)
        first = [asyncio.ensure_future(batcher.predict(image)) for _ in range(4)]
        await asyncio.sleep(0.02)  # The first pass is computing; four more queue behind it.
        await asyncio.gather(*first, *(batcher.predict(image) for _ in range(4)))
        await batcher.close()

    before = sys.getswitchinterval()
    asyncio.run(scenario())
    assert seen == [before, pytest.approx(0.00025)]
    assert sys.getswitchinterval() == before  # Put back after the pass.


def test_a_failing_chained_pass_puts_the_switch_interval_back() -> None:
    def failing(images: np.ndarray) -> np.ndarray:
        time.sleep(0.05)
        raise RuntimeError("boom")

    async def scenario() -> None:
        batcher = MicroBatcher(failing, ThreadPoolExecutor(1), max_batch_size=1, max_wait_ms=0, gil_interval_ms=0.25)
        image = np.zeros((32, 32, 3), np.uint8)
        outcomes = await asyncio.gather(*(batcher.predict(image) for _ in range(3)), return_exceptions=True)
        assert [str(outcome) for outcome in outcomes] == ["boom"] * 3
        await batcher.close()

    before = sys.getswitchinterval()
    asyncio.run(scenario())
    assert sys.getswitchinterval() == before


def test_the_batcher_counts_its_clients_as_the_most_requests_it_held_at_once() -> None:
    async def scenario() -> list[int]:
        batcher = MicroBatcher(_identity_rows, ThreadPoolExecutor(1), max_batch_size=32, max_wait_ms=0)
        image = np.zeros((32, 32, 3), np.uint8)
        counted = [batcher.clients()]
        await asyncio.gather(*(batcher.predict(image) for _ in range(8)))
        counted.append(batcher.clients())
        for _ in range(CLIENTS_OVER):
            await batcher.predict(image)  # One client left.
        counted.append(batcher.clients())
        burst = [asyncio.ensure_future(batcher.predict(image)) for _ in range(12)]
        await asyncio.sleep(0)
        counted.append(batcher.clients())  # Counted as it arrives, before any of its passes.
        await asyncio.gather(*burst)
        await batcher.close()
        return counted

    assert asyncio.run(scenario()) == [1, 8, 1, 12]


def test_two_groups_pay_when_one_more_passs_fixed_cost_is_less_than_the_event_loops_turn_it_hides() -> None:
    costs = CostModel()
    assert not costs.split_pays(8)  # Unmeasured: one group.
    for size in (1, 8):
        costs.observe(size, 0.0005 + 0.003 * size, loop=0.001 * size)  # The loop: 1 ms a request.
    assert costs.loop_per_image == pytest.approx(0.001)
    assert costs.split_pays(2)  # 0.5 ms for one more pass against 2 ms the thread would idle.
    for size in (1, 8) * 100:
        costs.observe(size, 0.020 + 0.0005 * size, loop=0.0002 * size)
    assert not costs.split_pays(8)  # 20 ms for one more pass against 1.6 ms.


def _burn(seconds: float) -> None:
    """Hold this thread's CPU (and the GIL) for `seconds`, as parsing a request does the event loop's."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def _costing(overhead: float, per_image: float) -> Callable[[np.ndarray], np.ndarray]:
    """A forward pass that takes `overhead + per_image * size` seconds (the GIL released, as a real one)."""

    def costed(images: np.ndarray) -> np.ndarray:
        time.sleep(overhead + per_image * len(images))
        return _identity_rows(images)

    return costed


def _closed_loop_batch_sizes(overhead: float, per_image: float, loop_per_request: float) -> list[int]:
    """Eight clients, each sending its next request when the last is answered, which costs the event loop
    `loop_per_request` of CPU; a pass costs `overhead + per_image * size` and the batcher knows that line."""

    async def client(batcher: MicroBatcher) -> None:
        for _ in range(30):
            _burn(loop_per_request)
            await batcher.predict(np.zeros((32, 32, 3), np.uint8))

    async def scenario() -> None:
        batcher = MicroBatcher(_costing(overhead, per_image), ThreadPoolExecutor(1), 32, max_wait_ms=60_000)
        for size in (1, 4):
            batcher.costs.observe(size, overhead + per_image * size)
        await asyncio.wait_for(asyncio.gather(*(client(batcher) for _ in range(8))), timeout=30)
        await batcher.close()

    _identity_rows.sizes.clear()
    asyncio.run(scenario())
    return list(_identity_rows.sizes)


def test_eight_clients_whose_event_loop_turn_outweighs_one_more_pass_alternate_in_two_groups_of_four() -> None:
    """One batch of eight leaves the thread idle through the loop's 8 ms turn; a pass costs only 0.5 ms more."""
    sizes = _closed_loop_batch_sizes(overhead=0.0005, per_image=0.003, loop_per_request=0.001)
    assert max(sizes[-20:]) == 4
    assert sum(sizes[-20:]) / 20 > 3  # Two groups of four, not a trickle of ones.


def test_eight_clients_whose_pass_costs_more_than_the_event_loops_turn_stay_in_one_group() -> None:
    sizes = _closed_loop_batch_sizes(overhead=0.020, per_image=0.0005, loop_per_request=0.0002)
    assert sizes[-20:] == [8] * 20


def test_a_burst_to_a_model_that_splits_its_clients_is_batched_in_two_halves() -> None:
    async def scenario() -> None:
        batcher = MicroBatcher(_costing(0.0005, 0.003), ThreadPoolExecutor(1), max_batch_size=32, max_wait_ms=0)
        for size in (1, 8):  # A heavy model, and a loop whose turn costs more than a pass's fixed cost.
            batcher.costs.observe(size, 0.0005 + 0.003 * size, period=0.003 * size, loop=0.001 * size)
        image = np.zeros((32, 32, 3), np.uint8)
        await batcher.predict(image)
        await asyncio.gather(*(batcher.predict(image) for _ in range(16)))
        await batcher.close()

    _identity_rows.sizes.clear()
    asyncio.run(scenario())
    assert _identity_rows.sizes == [1, 8, 8]
