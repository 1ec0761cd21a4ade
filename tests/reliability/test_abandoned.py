"""A request whose client went away stops using the CPU: its remaining images are never decoded."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.utils.servers import ServerProcess, server_process

pytestmark = pytest.mark.reliability

IMAGES = 20  # 25 MP PNGs, ~0.35 s each to decode here: ~7 s of work for nobody without the fix (8.9 MB).


def _photo_sized_png() -> bytes:
    """5000 x 5000 pixels (the 25 MP limit) that compress to a third of a megabyte."""
    ramp = np.linspace(0, 255, 5000, dtype=np.float32)
    pixels = np.repeat((np.add.outer(ramp, ramp) / 2 % 256).astype(np.uint8)[..., None], 3, axis=2)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=9)
    return buffer.getvalue()


def _cpu_seconds(server: ServerProcess) -> float:
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s.


def test_an_abandoned_request_stops_using_cpu_within_a_second(tiny_store: Path, tmp_path: Path) -> None:
    encoded = base64.b64encode(_photo_sized_png()).decode()
    body = {"instances": [{"b64": encoded}] * IMAGES}
    with server_process(tiny_store, tmp_path / "server.log") as server:
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
