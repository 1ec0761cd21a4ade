"""Memory under abuse: near-limit images at once, and a soak, against a real server process.

Bounds (measured on the 2-core CI machine, with headroom; see README "Reliability"):
decoding is bounded by MAX_CONCURRENT_DECODES (2) large decodes at a time, so 16
concurrent near-limit PNGs (4990 x 4990 RGBA) must not raise the server's peak RSS by more
than PEAK_BOUND_MB, and must leave less than RETAINED_BOUND_MB more than before once answered.
"""

from __future__ import annotations

import asyncio
import io
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.utils.data import SAMPLES
from tests.utils.servers import ServerProcess, server_process

pytestmark = pytest.mark.reliability

NEAR_LIMIT_SIDE = 4990  # 24.9 M pixels, just under the default 25 M cap; ~100 KB as a flat PNG.
CONCURRENT = 16
PEAK_BOUND_MB = 550  # Measured +412 MB.
RETAINED_BOUND_MB = 100  # Measured +8 MB; +543 MB before malloc_trim.
SOAK_ROUNDS, SOAK_REQUESTS, SOAK_CONCURRENCY = 3, 2000, 64
SOAK_GROWTH_BOUND_MB = 40  # Between the last two rounds, once caches have warmed up.
UNLOAD_CYCLES, UNLOAD_GROWTH_BOUND_MB = 50, 20


def _near_limit_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (NEAR_LIMIT_SIDE, NEAR_LIMIT_SIDE), (10, 20, 30, 128)).save(buffer, "PNG", compress_level=9)
    return buffer.getvalue()


async def _post_all(url: str, bodies: list[bytes], concurrency: int) -> list[int]:
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=concurrency)) as client:

        async def post(body: bytes) -> int:
            async with limit:
                response = await client.post(f"{url}/predict", files={"file": ("image.png", body)})
                return response.status_code

        return await asyncio.gather(*(post(body) for body in bodies))


def test_concurrent_near_limit_uploads_keep_peak_memory_bounded(live: ServerProcess) -> None:
    png = _near_limit_png()
    before = live.memory_kb()

    statuses = asyncio.run(_post_all(live.url, [png] * CONCURRENT, CONCURRENT))
    batch = httpx.post(f"{live.url}/predict/batch", files=[("files", ("a.png", png))] * 3, timeout=120)

    after = live.memory_kb()
    peak_mb = (after["VmHWM"] - before["VmHWM"]) / 1024
    retained_mb = (after["VmRSS"] - before["VmRSS"]) / 1024
    print(f"memory: {CONCURRENT} x {len(png) // 1024} KB PNGs of {NEAR_LIMIT_SIDE}^2 px: peak +{peak_mb:.0f} MB, "
          f"retained +{retained_mb:.0f} MB (RSS before {before['VmRSS'] // 1024} MB)")  # fmt: skip
    assert set(statuses) == {200} and batch.status_code == 200
    assert peak_mb < PEAK_BOUND_MB
    assert retained_mb < RETAINED_BOUND_MB


def test_soak_memory_levels_off(live: ServerProcess) -> None:
    samples = [path.read_bytes() for path in sorted(SAMPLES.glob("*.png"))]
    rng = np.random.default_rng(0)
    rss_mb = []
    for _ in range(SOAK_ROUNDS):
        bodies = [samples[i] for i in rng.integers(0, len(samples), SOAK_REQUESTS)]
        statuses = asyncio.run(_post_all(live.url, bodies, SOAK_CONCURRENCY))
        assert set(statuses) == {200}
        rss_mb.append(live.memory_kb()["VmRSS"] / 1024)
    print("soak: RSS after each round of", SOAK_REQUESTS, "requests at c=64:", [f"{mb:.0f} MB" for mb in rss_mb])
    assert rss_mb[-1] - rss_mb[-2] < SOAK_GROWTH_BOUND_MB


def test_version_load_and_unload_cycles_return_their_memory(tiny_store: Path, tmp_path: Path) -> None:
    """50 versions loaded and unloaded in turn (the default and one other kept in memory) grow the
    server's RSS by less than UNLOAD_GROWTH_BOUND_MB once the first few have warmed its caches."""
    store = tmp_path / "models"
    for version in range(1, 4):
        shutil.copytree(tiny_store / "model_1" / "1", store / "model_1" / str(version))
    png = (SAMPLES / "test_00000_cat.png").read_bytes()
    with (
        server_process(store, tmp_path / "server.log", MAX_LOADED_VERSIONS="2") as server,
        httpx.Client(timeout=60) as client,
    ):

        def cycle(index: int) -> None:
            version = 1 + index % 2  # Alternate v1 and v2 (v3 is the default, always loaded).
            answer = client.post(f"{server.url}/predict", params={"version": version}, files={"file": ("x.png", png)})
            assert answer.status_code == 200, answer.text

        for index in range(6):
            cycle(index)
        before = server.memory_kb()["VmRSS"]
        for index in range(6, 6 + UNLOAD_CYCLES):
            cycle(index)
        after = server.memory_kb()["VmRSS"]
    growth = (after - before) / 1024
    print(f"{UNLOAD_CYCLES} load/unload cycles: RSS {before / 1024:.0f} -> {after / 1024:.0f} MB ({growth:+.1f} MB)")
    assert growth < UNLOAD_GROWTH_BOUND_MB, f"RSS grew {growth:.1f} MB over {UNLOAD_CYCLES} load/unload cycles"
