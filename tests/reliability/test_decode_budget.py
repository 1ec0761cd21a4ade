"""One request cannot hold the decoders for long: its images share a pixel budget (MAX_REQUEST_PIXELS),
charged from each header before decoding, and the image past it ends the request with a 413."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx
import pytest

from tests.utils.images import photo_sized_png
from tests.utils.servers import server_process

pytestmark = pytest.mark.reliability


def test_a_request_of_many_large_photos_is_refused_at_its_budget(tiny_store: Path, tmp_path: Path) -> None:
    """Like the first probing round's 93 photos of 25 MP, which took both cores for a minute: 20 of them
    (8.9 MB, under the body limit) are refused at the fifth, after four decodes (the default 100 M pixels)."""
    encoded = base64.b64encode(photo_sized_png()).decode()
    with server_process(tiny_store, tmp_path / "server.log") as server:
        started = time.perf_counter()
        response = httpx.post(
            f"{server.url}/v1/models/model_1:predict", json={"instances": [{"b64": encoded}] * 20}, timeout=60
        )
        elapsed = time.perf_counter() - started
        small = httpx.post(
            f"{server.url}/v1/models/model_1:predict", json={"instances": [{"b64": encoded}] * 4}, timeout=60
        )
    print(f"20 photos of 25 MP: {response.status_code} after {elapsed:.2f} s")
    assert response.status_code == 413, response.text
    assert "MAX_REQUEST_PIXELS" in response.json()["error"]
    assert elapsed < 10, f"refused only after {elapsed:.1f} s"
    assert small.status_code == 200, small.text  # Four photos fit the budget: the next request starts afresh.
