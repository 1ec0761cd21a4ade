"""WORKERS=N starts N server processes, and /metrics in any of them counts the whole service."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import httpx
import pytest

from tests.utils.data import SAMPLES
from tests.utils.servers import serving

pytestmark = pytest.mark.slow


def _children(pid: int, command_contains: str) -> list[int]:
    found = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            status, command = (process / "status").read_text(), (process / "cmdline").read_bytes()
        except OSError:
            continue
        if re.search(rf"^PPid:\s+{pid}$", status, re.MULTILINE) and command_contains.encode() in command:
            found.append(int(process.name))
    return found


def _predictions_counted(base_url: str) -> float:
    text = httpx.get(f"{base_url}/metrics").text  # A new connection each time: any worker may answer.
    rows = [line for line in text.splitlines() if line.startswith("cifar_predictions_total{")]
    return sum(float(row.rsplit(" ", 1)[1]) for row in rows)


def _wait_until_every_worker_is_ready(base_url: str, in_a_row: int = 20, seconds: float = 120) -> None:
    """/readyz is per process and `serving` returns at the first 200: the other worker may still be
    loading. Twenty 200s in a row on new connections (spread over both workers) mean both are up."""
    deadline, streak = time.monotonic() + seconds, 0
    while streak < in_a_row:
        assert time.monotonic() < deadline, "the workers never all became ready"
        streak = streak + 1 if httpx.get(f"{base_url}/readyz").status_code == 200 else 0
        time.sleep(0.05)


def test_two_workers_share_one_set_of_metrics(tiny_store: Path, tmp_path: Path) -> None:
    png = (SAMPLES / "test_00000_cat.png").read_bytes()
    with serving(tiny_store, tmp_path / "server.log", WORKERS="2", POLL_INTERVAL_SECONDS="0") as base_url:
        (server,) = _children(os.getpid(), "app")
        workers = _children(server, "spawn_main")
        _wait_until_every_worker_is_ready(base_url)
        for _ in range(40):  # New connections, so the kernel spreads them over both workers.
            response = httpx.post(f"{base_url}/predict", files={"file": ("cat.png", png)})
            assert response.status_code == 200
        # Per-process counters would answer with each worker's share; shared ones always with the total.
        counts = {_predictions_counted(base_url) for _ in range(20)}

    assert len(workers) == 2, f"worker processes: {workers}"
    assert counts == {40.0}
