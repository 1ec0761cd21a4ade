"""The model store going wrong under a running, loaded server: every request still gets an answer.

Each case runs its own server over its own copy of the tiny store, rescanning every
0.2 s, with 64 requests in flight when the fault happens.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.utils.data import SAMPLES
from tests.utils.servers import ServerProcess, server_process
from training.core import artifacts

pytestmark = pytest.mark.reliability

IN_FLIGHT = 64
ANSWER_SECONDS = 60.0


@contextmanager
def _server_over_copy(tiny_store: Path, tmp_path: Path) -> Iterator[tuple[ServerProcess, Path]]:
    store = tmp_path / "models"
    shutil.copytree(tiny_store, store)
    shutil.copytree(store / "model_1" / "1", store / "model_1" / "2")  # Two versions; 2 is served.
    with server_process(store, tmp_path / "server.log", POLL_INTERVAL_SECONDS="0.2") as server:
        _wait_for(lambda: _served_version(server) == 2)
        yield server, store


def _served_version(server: ServerProcess) -> int | None:
    (model,) = [m for m in httpx.get(f"{server.url}/models").json()["models"] if m["name"] == "model_1"] or [None]
    return model["served_version"] if model else None


def _wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the server to notice"
        time.sleep(0.1)


def _during_load(url: str, fault: Callable[[], None]) -> Counter[int | str]:
    """IN_FLIGHT concurrent /predict requests (version left to the server), the fault in the middle."""
    png = (SAMPLES / "test_00000_cat.png").read_bytes()

    async def run() -> list[int | str]:
        async with httpx.AsyncClient(timeout=ANSWER_SECONDS) as client:

            async def one() -> int | str:
                try:
                    response = await client.post(f"{url}/predict", files={"file": ("x.png", png)})
                except httpx.TimeoutException:
                    return "hang"
                response.json()
                return response.status_code

            requests = [asyncio.create_task(one()) for _ in range(IN_FLIGHT * 4)]
            await asyncio.sleep(0.05)
            await asyncio.to_thread(fault)
            return await asyncio.gather(*requests)

    return Counter(asyncio.run(run()))


def test_deleting_the_served_version_answers_every_request_and_falls_back(tiny_store: Path, tmp_path: Path) -> None:
    with _server_over_copy(tiny_store, tmp_path) as (server, store):
        outcomes = _during_load(server.url, lambda: shutil.rmtree(store / "model_1" / "2"))
        _wait_for(lambda: _served_version(server) == 1)
        after = httpx.post(
            f"{server.url}/predict", files={"file": ("x.png", (SAMPLES / "test_00000_cat.png").read_bytes())}
        )
    print("delete served version:", dict(outcomes))
    assert set(outcomes) <= {200, 404, 503}, outcomes
    assert after.status_code == 200 and after.json()["version"] == 1


def test_deleting_the_whole_model_answers_every_request(tiny_store: Path, tmp_path: Path) -> None:
    with _server_over_copy(tiny_store, tmp_path) as (server, store):
        outcomes = _during_load(server.url, lambda: shutil.rmtree(store / "model_1"))
        _wait_for(lambda: _served_version(server) is None)
        ready = httpx.get(f"{server.url}/readyz")
    print("delete model:", dict(outcomes))
    assert set(outcomes) <= {200, 404, 503}, outcomes
    assert ready.status_code == 503 and ready.json()["status"] == "no model available"


def test_a_truncated_new_version_is_reported_then_loaded_once_fixed(tiny_store: Path, tmp_path: Path) -> None:
    with _server_over_copy(tiny_store, tmp_path) as (server, store):
        staging = tmp_path / "3"
        shutil.copytree(store / "model_1" / "1", staging)
        # A copy cut short: the weights it could serve from, the IR's and the Keras model's, both halved.
        weight_files = [staging / artifacts.MODEL_FILE, staging / artifacts.IR_DIR / "model.bin"]
        good = [path.read_bytes() for path in weight_files]
        for path, content in zip(weight_files, good, strict=True):
            path.write_bytes(content[: len(content) // 2])
        outcomes = _during_load(server.url, lambda: staging.rename(store / "model_1" / "3"))

        def version_3() -> dict:
            (model,) = [m for m in httpx.get(f"{server.url}/models").json()["models"] if m["name"] == "model_1"]
            return next((v for v in model["versions"] if v["version"] == 3), {})

        _wait_for(lambda: version_3().get("state") == "failed")
        failed = version_3()
        served_meanwhile = _served_version(server)
        for path, content in zip(weight_files, good, strict=True):
            (store / "model_1" / "3" / path.relative_to(staging)).write_bytes(content)
        _wait_for(lambda: version_3().get("state") == "loaded")
    print("truncated version:", dict(outcomes), failed["error"])
    assert set(outcomes) == {200}, outcomes
    assert served_meanwhile == 2
    assert "truncated or corrupt" in failed["error"]
    assert str(tmp_path) not in failed["error"], "no server paths in errors"
