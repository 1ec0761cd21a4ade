"""A request whose client went away stops using the CPU: its remaining images are never decoded."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx
import pytest

from tests.utils.images import photo_sized_png
from tests.utils.servers import ServerProcess, server_process

pytestmark = pytest.mark.reliability

IMAGES = 20  # 25 MP PNGs, ~0.35 s each to decode here: ~7 s of work for nobody without the fix (8.9 MB).


def _cpu_seconds(server: ServerProcess) -> float:
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s.


def test_an_abandoned_request_stops_using_cpu_within_a_second(tiny_store: Path, tmp_path: Path) -> None:
    encoded = base64.b64encode(photo_sized_png()).decode()
    body = {"instances": [{"b64": encoded}] * IMAGES}
    # A budget for all 20 photos: this test is about the client leaving (test_decode_budget: the budget).
    with server_process(tiny_store, tmp_path / "server.log", MAX_REQUEST_PIXELS=str(10**9)) as server:
        with pytest.raises(httpx.TimeoutException):
            httpx.post(f"{server.url}/v1/models/model_1:predict", json=body, timeout=2.0)  # Gives up at 2 s.
        time.sleep(1.0)  # The image being decoded when the client left may finish.
        before = _cpu_seconds(server)
        time.sleep(3.0)
        spent = _cpu_seconds(server) - before
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    print(f"abandoned request: {spent:.2f} CPU-seconds in the 3 s after its client left")
    assert spent < 0.5, f"the server spent {spent:.2f} CPU-seconds in the 3 s after its client left"
    assert "the client went away" in server.log_path.read_text()
