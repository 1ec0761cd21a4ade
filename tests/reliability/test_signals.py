"""SIGHUP reloads on purpose, with one worker or several; it never drops requests in flight."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.utils.data import SAMPLES
from tests.utils.servers import server_process

pytestmark = pytest.mark.reliability

PNG = (SAMPLES / "test_00000_cat.png").read_bytes()


def _hammer(url: str, stop: threading.Event, outcomes: Counter[str]) -> None:
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            try:
                outcomes[str(client.post(f"{url}/predict", files={"file": ("x.png", PNG)}).status_code)] += 1
            except httpx.TransportError as error:
                outcomes[type(error).__name__] += 1


def test_sighup_with_one_worker_rescans_and_drops_nothing(tiny_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "models"
    shutil.copytree(tiny_store, store)
    # Polling off: only the SIGHUP can make the new version appear.
    with server_process(store, tmp_path / "server.log", POLL_INTERVAL_SECONDS="0", WORKERS="1") as server:
        stop, outcomes = threading.Event(), Counter[str]()
        threads = [threading.Thread(target=_hammer, args=(server.url, stop, outcomes)) for _ in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(1)
        shutil.copytree(store / "model_1" / "1", store / "model_1" / "2")
        server.process.send_signal(signal.SIGHUP)
        time.sleep(3)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        assert server.process.poll() is None, "SIGHUP must not stop the server"
        listed = httpx.get(f"{server.url}/models", timeout=10).json()["models"][0]
        assert [version["version"] for version in listed["versions"]] == [1, 2]
    assert set(outcomes) == {"200"} and outcomes["200"] > 50, outcomes
    assert "SIGHUP: rescanning" in server.log_path.read_text()


def test_sighup_with_two_workers_restarts_them_and_keeps_serving(tiny_store: Path, tmp_path: Path) -> None:
    with server_process(tiny_store, tmp_path / "server.log", WORKERS="2") as server:
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        answered = 0
        while time.monotonic() < deadline and answered < 20:
            with httpx.Client(timeout=30) as client:  # A new connection each time: old workers may be leaving.
                answered += client.post(f"{server.url}/predict", files={"file": ("x.png", PNG)}).status_code == 200
        assert server.process.poll() is None and answered == 20
    assert "Received SIGHUP, restarting processes" in server.log_path.read_text()
