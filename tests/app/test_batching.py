"""The micro-batcher coalesces concurrent requests and keeps each answer with its request."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from app.batching import MicroBatcher


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
