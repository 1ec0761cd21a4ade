"""Decoding within a memory budget: large uploads take turns; small ones never wait."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
from PIL import Image

from app import uploads
from app.decoding import ImageTooLarge
from app.uploads import Decoder
from tests.utils.images import encode


def test_large_decodes_take_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    running, peak, lock = 0, 0, threading.Lock()

    def slow_decode(data: bytes, max_pixels: int, charge: object = None) -> np.ndarray:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return np.zeros((32, 32, 3), np.uint8)

    monkeypatch.setattr(uploads, "decode_image", slow_decode)
    decoder = Decoder(max_pixels=10**8, slots=2, max_request_pixels=10**9)

    async def burst() -> None:
        await asyncio.gather(*(decoder.decode(b"\0" * (Decoder.INLINE_BYTES + 1)) for _ in range(8)))

    asyncio.run(burst())
    assert peak == 2


def test_a_large_photo_decodes_to_32x32_rgb() -> None:
    """At reduced DCT scale (memory: bench/decode_memory.py); the answer has the same form."""
    photo = encode(Image.effect_noise((4000, 3000), 40).convert("RGB"), "JPEG", quality=90)
    pixels = asyncio.run(Decoder(max_pixels=40_000_000, slots=1, max_request_pixels=40_000_000).decode(photo))
    assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8


def test_a_request_is_refused_the_image_past_its_pixel_budget_and_the_next_request_starts_afresh() -> None:
    """Charged from each header before decoding: the third 100x100 image of a 25,000-pixel budget is refused."""
    image = encode(Image.new("RGB", (100, 100), "red"), "PNG")
    decoder = Decoder(max_pixels=10**6, slots=1, max_request_pixels=25_000)

    async def request() -> None:
        budget = decoder.budget()
        await decoder.decode(image, budget)
        await decoder.decode(image, budget)
        with pytest.raises(ImageTooLarge, match="MAX_REQUEST_PIXELS"):
            await decoder.decode(image, budget)

    asyncio.run(request())
    asyncio.run(request())
